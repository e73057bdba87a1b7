"""Every end of a job is called by its true name (issue 19): a real transformers Trainer
under wandb_resume::supervise, with a fake `scontrol` on PATH (it records its
arguments) and SLURM_JOB_ID set, so a requeue would show.

- A run stopped by its own rule (EarlyStoppingCallback, short of max_steps) exits 0
  and records why: one segment, DONE, no requeue (started again: nothing runs); the
  decision says where it ended.
- A stop signal that lands during the last step (sent at the start of that step by a
  test callback: deterministic) changes nothing: exit 0, DONE, no requeue, no
  checkpoint beyond max_steps; to the trainer itself, and to the supervising shell
  with torchrun's two workers (the `B:` form).
(Preemption mid-run: test_job.py, test_preempt.py; under real SLURM: tests/slurm.)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TRAIN_RESUME, clean_env
from test_launchers import BIN, free_port

pytest.importorskip("transformers")
ENDING = Path(__file__).with_name("shapes") / "ending.py"
LIB = ROOT / "lib" / "wandb_resume.sh"


def job_env(tmp_path, out, **extra):
    """A job of SLURM job 42 (not a real one: scontrol is a fake that records)."""
    fake = tmp_path / "fakebin"
    fake.mkdir(exist_ok=True)
    (fake / "scontrol").write_text('#!/bin/sh\nprintf "%s\\n" "$*" >>"$SCONTROL_LOG"\n')
    (fake / "scontrol").chmod(0o755)
    env = clean_env(
        WANDB_MODE="disabled",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
        SLURM_JOB_ID="42",
        SCONTROL_LOG=tmp_path / "scontrol.log",
        **extra,
    )
    env["PATH"] = f"{fake}{os.pathsep}{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def supervised(out, *command):
    """bash: source the library, decide, then supervise COMMAND (the job script's
    shape); the shell's pid is in SUPERVISOR for COMMAND (the B: form's target)."""
    script = (
        'source "$1"; shift; out=$1; shift\n'
        "export SUPERVISOR=$$\n"
        'wandb_resume::configure -q -o "$out" || exit 9\n'
        'wandb_resume::supervise -o "$out" -- "$@"\n'
    )
    return ["bash", "-c", script, "_", LIB, out, *command]


def run(cmd, tmp_path, env):
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def checkpoints(out):
    return sorted(int(p.name[11:]) for p in out.glob("checkpoint-*"))


def ended(out):
    """The end record, as NAME -> VALUE (job and time left out)."""
    lines = (out / ".train-resume" / "ended").read_text().splitlines()
    record = dict(line.split("=", 1) for line in lines)
    return {k: v for k, v in record.items() if k not in ("job", "time")}


def assert_finished_once(done, cmd, tmp_path, env):
    """DONE written, no requeue asked; CMD started again runs nothing."""
    out = tmp_path / "out"
    assert done.returncode == 0, done.stderr[-4000:]
    assert (out / "DONE").is_file()
    assert not (tmp_path / "scontrol.log").exists(), (tmp_path / "scontrol.log").read_text()
    assert "✅ finished: wrote" in done.stderr
    saved = checkpoints(out)
    again = run(cmd, tmp_path, env)
    assert again.returncode == 0 and "exists: the run is finished; nothing to run" in again.stderr
    assert checkpoints(out) == saved and "after trainer.train()" not in again.stdout


def test_early_stopping_under_supervise_is_finished_one_segment_done_no_requeue(tmp_path):
    out = tmp_path / "out"
    env = job_env(tmp_path, out)
    cmd = supervised(out, sys.executable, ENDING, "--output_dir", out, "--max_steps", "20")
    done = run([*cmd, "--early_stopping"], tmp_path, env)
    assert_finished_once(done, cmd, tmp_path, env)
    assert done.stdout.count("after trainer.train() on rank 0") == 1
    # EarlyStopping (patience 1) stops at the second evaluation: step 4 of 20.
    assert checkpoints(out) == [2, 4]
    assert ended(out) == {"reason": "should_training_stop", "step": "4", "max_steps": "20"}
    assert (
        "the trainer stopped by its own rule before max_steps (step 4 of max_steps 20: "
        "should_training_stop, set by a callback such as EarlyStoppingCallback)"
    ) in done.stderr
    # Without supervise, the decision says where that run ended, from the record.
    decision = run([TRAIN_RESUME, "-o", out, "--explain", "--json"], tmp_path, env)
    warnings = json.loads(decision.stdout)["warnings"]
    assert any(
        w.startswith("checkpoint-4 is where that run ended: the trainer stopped by its own rule")
        for w in warnings
    ), warnings


def test_usr1_during_the_last_step_is_finished_exit_0_done_no_step_past_max_steps(tmp_path):
    """The signal reaches the trainer itself (as `scancel -s USR1` reaches a job step)
    at the start of step 6 of 6: the step ends, the run is at its end: exit 0."""
    out = tmp_path / "out"
    env = job_env(tmp_path, out)
    cmd = supervised(out, sys.executable, ENDING, "--output_dir", out, "--max_steps", "6")
    done = run([*cmd, "--signal_last_step", "self"], tmp_path, env)
    assert "SIGUSR1 landed at the start of step 6" in done.stdout, done.stderr[-4000:]
    assert_finished_once(done, cmd, tmp_path, env)
    assert "⏸ SIGUSR1 at step 6, where training ends anyway: finished, not preempted" in done.stderr
    assert "after trainer.train() on rank 0" in done.stdout
    assert checkpoints(out) == [2, 4, 6]
    assert ended(out) == {"reason": "max_steps", "signal": "USR1", "step": "6", "max_steps": "6"}


def test_usr1_to_the_supervisor_during_torchruns_last_step_is_finished_not_preempted(tmp_path):
    """The B: form with torchrun: rank 0 sends SIGUSR1 to the supervising shell at the
    start of the last step; supervise forwards it to both workers (torchrun would die of
    it); they agree on it at that step's end, where training ends anyway: each exits 0,
    torchrun exits 0, DONE, no requeue, no checkpoint past max_steps."""
    out = tmp_path / "out"
    env = job_env(tmp_path, out)
    torchrun = [BIN / "torchrun", "--nproc_per_node", "2", "--master_port", free_port()]
    cmd = supervised(out, *torchrun, ENDING, "--output_dir", out, "--max_steps", "6")
    done = run([*cmd, "--signal_last_step", "supervisor"], tmp_path, env)
    assert "SIGUSR1 landed at the start of step 6" in done.stdout, done.stderr[-4000:]
    assert "⏸ got SIGUSR1: asking the trainer to save and stop (SIGUSR1 to pid" in done.stderr
    assert_finished_once(done, cmd, tmp_path, env)
    assert "after trainer.train() on rank 0" in done.stdout
    assert "after trainer.train() on rank 1" in done.stdout
    assert checkpoints(out) == [2, 4, 6]
    assert ended(out) == {"reason": "max_steps", "signal": "USR1", "step": "6", "max_steps": "6"}
    assert "; exit 0 after SIGUSR1; recorded in" in done.stderr
