"""Shared helpers for the Python tests: run things in subprocesses, as users do."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAIN_RESUME = ROOT / "bin" / "train-resume"


def clean_env(**extra):
    """The environment of a fresh job: none of the decision's variables, not inside a
    SLURM job (a job is one for the lock), W&B offline."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WANDB_", "TRAIN_RESUME_", "SLURM_"))
        and k != "RESUME_FROM_CHECKPOINT_DIR"
    }
    env.update(WANDB_MODE="offline", HF_HUB_OFFLINE="1", WANDB_SILENT="true")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def free_port():
    """A TCP port free right now (torchrun's rendezvous: a fixed one collides with
    another suite running at the same time on the machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, cwd, timeout=300, **env):
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def shim(args, cwd, **env):
    return run([sys.executable, "-m", "train_resume", *args], cwd, **env)


@pytest.fixture
def work(tmp_path):
    d = tmp_path / "work dir"
    d.mkdir()
    return d
