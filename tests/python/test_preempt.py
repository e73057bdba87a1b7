"""Preempted is a state the trainer reports: a real Trainer stopped by SIGUSR1 saves,
then every rank exits with 128+signal (138), and no code after trainer.train() runs.
The signal reaches the trainer directly (as `scancel -s USR1` without -b does), not
through supervise."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, TRAIN_RESUME, clean_env
from test_launchers import BIN, free_port

sys.path.insert(0, str(ROOT / "examples"))
from demo import descendants  # noqa: E402

SCRIPT = Path(__file__).with_name("shapes") / "after_train.py"
STEPS = ["--max_steps", "400", "--save_steps", "2"]


def start(cmd, cwd, wandb_mode="disabled"):
    return subprocess.Popen(
        [str(c) for c in cmd],
        cwd=cwd,
        env=clean_env(WANDB_MODE=wandb_mode),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(path, proc, seconds=240):
    deadline = time.monotonic() + seconds
    while not (path / "trainer_state.json").exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"no {path.name}"
        time.sleep(0.05)


def saved_steps(out):
    return sorted(int(p.name[11:]) for p in out.glob("checkpoint-*"))


def test_usr1_saves_then_exits_138_and_the_line_after_train_does_not_run(tmp_path):
    out = tmp_path / "out"
    proc = start(
        [TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, SCRIPT, "--output_dir", out, *STEPS],
        tmp_path,
    )
    wait_for(out / "checkpoint-2", proc)
    proc.send_signal(signal.SIGUSR1)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 138, stderr[-3000:]
    assert "after trainer.train()" not in stdout
    assert "rank 0 raised SystemExit(138)" in stdout
    step = saved_steps(out)[-1]
    assert 2 <= step < 400
    state = json.loads((out / f"checkpoint-{step}" / "trainer_state.json").read_text())
    assert state["global_step"] == step
    assert f"⏹ preempted (SIGUSR1): checkpoint-{step} is saved; exiting with status 138" in stderr


def test_usr1_to_both_ranks_of_torchrun_exits_138_on_each_at_one_step(tmp_path):
    out = tmp_path / "out"
    cmd = [BIN / "torchrun", "--nproc_per_node", "2", "--master_port", free_port(), SCRIPT]
    # W&B offline: rank 0 finishes its run before the ranks' last barrier.
    proc = start(
        [TRAIN_RESUME, "-q", "-o", out, "--", *cmd, "--output_dir", out, *STEPS],
        tmp_path,
        wandb_mode="offline",
    )
    wait_for(out / "checkpoint-2", proc)
    workers = [pid for pid in descendants(proc.pid) if f"{SCRIPT}" in _cmdline(pid)]
    assert len(workers) == 2, workers
    # Only one rank gets the signal: the ranks agree on it and stop at the same step.
    time.sleep(0.5)
    os.kill(workers[1], signal.SIGUSR1)
    stdout, stderr = proc.communicate(timeout=240)
    assert "after trainer.train()" not in stdout, stdout
    # Each rank ends with SystemExit(138), after the barrier (the checkpoint saved, W&B
    # finished). torchrun stops the other ranks itself as soon as one has exited: a rank
    # still in interpreter teardown then shows -15. Its root cause is a 138; it exits 1.
    assert "rank 0 raised SystemExit(138)" in stdout, stderr[-4000:]
    assert "rank 1 raised SystemExit(138)" in stdout, stderr[-4000:]
    root = stderr.partition("Root Cause (first observed failure):")[2]
    assert re.search(r"exitcode\s+:\s+138 ", root), stderr[-4000:]
    assert {code for _, code in _exit_codes(stderr)} <= {"138", "-15"}, stderr[-4000:]
    assert proc.returncode == 1
    step = saved_steps(out)[-1]
    state = json.loads((out / f"checkpoint-{step}" / "trainer_state.json").read_text())
    assert state["global_step"] == step


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _exit_codes(stderr):
    """[(rank, exit code)] of torchrun's failure report."""
    return sorted(re.findall(r"rank\s+:\s+(\d+) \(local_rank.*\n\s+exitcode\s+:\s+(-?\d+)", stderr))
