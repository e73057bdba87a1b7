"""A job is many processes: every guarantee holds for the whole job (real transformers
and TRL trainers, torchrun with 2 gloo ranks on CPU, W&B offline).

- The lock belongs to the job: its Python processes register themselves
  (train_resume/job.py); torchrun's workers keep the output dir after their launcher
  was killed alone, a stray background child of a wrapper keeps nothing.
- Saved means saved by every rank: a kill between rank 0's trainer_state.json and
  the end of the save on rank 1 (or, with TRL, before entropy_ctrl_state.json) leaves
  a checkpoint that is passed over; the one before is resumed.
- supervise: --signal USR2 reaches the trainer's callback; with torchrun, the workers
  (in sessions of their own) save, the job is preempted although torchrun exits 1,
  and no process of it is left.
(Under SLURM: tests/slurm/test_slurm.py.)
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TRAIN_RESUME, clean_env
from test_launchers import BIN, free_port
from test_preempt import _cmdline

sys.path.insert(0, str(ROOT / "examples"))
from demo import alive, checkpoint_complete, descendants, kill_tree  # noqa: E402

pytest.importorskip("trl")
SHAPES = Path(__file__).with_name("shapes")
CAUSAL_LM = SHAPES / "causal_lm.py"
STALL = SHAPES / "save_stall.py"
LIB = ROOT / "lib" / "wandb_resume.sh"


def job_env(out, **extra):
    env = clean_env(WANDB_DIR=out, TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", **extra)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def start(cmd, cwd, env, log):
    return subprocess.Popen(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_until(predicate, proc, what, seconds=300):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.poll() is None, f"exited {proc.returncode} before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def torchrun(script, *args):
    return [BIN / "torchrun", "--nproc_per_node", "2", "--master_port", free_port(), script, *args]


def workers(proc, script):
    return [pid for pid in descendants(proc.pid) if str(script) in _cmdline(pid)]


def saved_steps(out):
    return sorted(int(p.name[11:]) for p in out.glob("checkpoint-*") if checkpoint_complete(p))


def rows(checkpoint):
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return [row["step"] for row in state["log_history"] if "loss" in row]


def test_python_processes_register_with_the_job_and_unregister_at_exit(tmp_path):
    """Every Python process of the job (the hook's first act) holds a shared flock on
    its own procs/ file, on a descriptor its children do not inherit; gone at exit."""
    out = tmp_path / "out"
    probe = (
        "import fcntl, json, os, subprocess, sys\n"
        "d = os.path.join(os.environ['TRAIN_RESUME_JOB_DIR'], 'procs')\n"
        "mine = [f for f in os.listdir(d) if f.startswith(f'{os.getpid()}.')]\n"
        "fd = os.open(os.path.join(d, mine[0]), os.O_RDONLY)\n"
        "try:\n"
        "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); held = False\n"
        "except BlockingIOError:\n"
        "    held = True\n"
        "child = subprocess.run(['ls', '-l', '/proc/self/fd'], capture_output=True, text=True)\n"
        "key = open(os.path.join(d, mine[0])).read()\n"
        "print(json.dumps({'mine': mine, 'held': held, 'key': key,\n"
        "    'job': os.environ['TRAIN_RESUME_JOB'], 'in_child': mine[0] in child.stdout}))\n"
    )
    done = subprocess.run(
        [str(TRAIN_RESUME), "-q", "-o", out, "--", sys.executable, "-c", probe],
        env=job_env(out),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert len(seen["mine"]) == 1 and seen["mine"][0].endswith(f"@{os.uname().nodename}")
    assert seen["held"] and seen["key"] == seen["job"] + "\n"
    assert not seen["in_child"]
    assert list((tmp_path / ".train-resume" / "out" / "procs").iterdir()) == []


def test_a_process_of_a_job_that_lost_the_output_dir_stops_at_once(tmp_path):
    """A Python process whose job no longer owns the output dir (another job took it
    over, its own launcher gone) stops at start-up, exit 1, saying so; its
    registration is removed. A process of the owning job goes on."""
    job_dir = tmp_path / ".train-resume" / "out"
    (job_dir / "procs").mkdir(parents=True)
    (job_dir / "lock").touch()
    (job_dir / "job").write_text("slurm-2-r0 elsewhere 1 0\n")
    env = clean_env(TRAIN_RESUME_JOB_DIR=job_dir, TRAIN_RESUME_JOB="slurm-1-r0")
    env["PYTHONPATH"] = f"{ROOT / 'train_resume' / 'bootstrap'}{os.pathsep}{env['PYTHONPATH']}"
    cmd = [sys.executable, "-c", "print('trained')"]
    lost = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert lost.returncode == 1 and "trained" not in lost.stdout
    assert (
        "this process belongs to job slurm-1-r0, but the output dir now belongs to job "
        f"slurm-2-r0 ({job_dir}/job)"
    ) in lost.stderr
    assert list((job_dir / "procs").iterdir()) == []
    env["TRAIN_RESUME_JOB"] = "slurm-2-r0"
    owner = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert owner.returncode == 0 and owner.stdout == "trained\n", owner.stderr


def test_the_launcher_killed_alone_its_workers_keep_the_output_dir(tmp_path):
    """torchrun SIGKILLed alone: its workers, in sessions of their own, train on; the
    next start is refused, naming one of them, until they are gone."""
    out = tmp_path / "out"
    env = job_env(out, WANDB_MODE="disabled")
    cmd = [TRAIN_RESUME, "-o", out, "--", *torchrun(CAUSAL_LM, "--output_dir", out)]
    cmd += ["--max_steps", "100000", "--save_steps", "2"]
    ranks = []
    with open(tmp_path / "first.log", "ab") as log:
        proc = start(cmd, tmp_path, env, log)
        try:
            wait_until(lambda: saved_steps(out), proc, "checkpoint-2")
            ranks = workers(proc, CAUSAL_LM)
            assert len(ranks) == 2, ranks
            os.kill(proc.pid, signal.SIGKILL)  # the launcher (torchrun, by the exec) only
            proc.wait()
            time.sleep(1)
            assert all(alive(pid) for pid in ranks), "the workers died with their launcher"
            again = subprocess.run(
                [str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=120
            )
            assert again.returncode == 1, again.stderr
            named = [pid for pid in ranks if f", pid {pid} " in again.stderr]
            assert named and "is in use by job pid-" in again.stderr, again.stderr
            assert "two jobs would write into the same folders" in again.stderr
        finally:
            for pid in descendants(proc.pid) + ranks:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in ranks) and time.monotonic() < deadline:
        time.sleep(0.1)
    free = subprocess.run(
        [str(TRAIN_RESUME), "-o", out, "--", "true"], env=env, capture_output=True, text=True
    )
    assert free.returncode == 0, free.stderr


def test_a_stray_background_child_of_a_wrapper_does_not_block_the_next_start(tmp_path):
    """A wrapper that leaves `sleep &` behind (it inherits the launcher's descriptors):
    killed after a checkpoint, the same command starts again and resumes."""
    out = tmp_path / "out"
    env = job_env(out, WANDB_MODE="disabled")
    script = 'sleep 600 >/dev/null 2>&1 & echo $! >"$1/stray.pid"; shift; python "$@"'
    cmd = [TRAIN_RESUME, "-o", out, "--", "bash", "-c", script, "_", tmp_path, CAUSAL_LM]
    cmd += ["--output_dir", out, "--max_steps", "6", "--save_steps", "2"]
    with open(tmp_path / "first.log", "ab") as log:
        proc = start(cmd, tmp_path, env, log)
        wait_until(lambda: 4 in saved_steps(out), proc, "checkpoint-4")
        stray = int((tmp_path / "stray.pid").read_text())
        for pid in [proc.pid, *descendants(proc.pid)]:
            if pid != stray:
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    try:
        assert alive(stray)
        again = subprocess.run(
            [str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=300
        )
        assert again.returncode == 0, again.stderr[-3000:]
        assert f"resuming from checkpoint: {out}/checkpoint-" in again.stderr
    finally:
        os.kill(stray, signal.SIGKILL)
        stray2 = int((tmp_path / "stray.pid").read_text())
        if stray2 != stray:
            os.kill(stray2, signal.SIGKILL)


def killed_in_the_save_of_step_4(cmd, tmp_path, env, settle=0.0):
    """Run CMD --stall_step 4 (shapes/save_stall.py); once it waits inside the save of
    step 4 and checkpoint-4's trainer_state.json is whole, wait SETTLE seconds, then
    SIGKILL its whole tree. Returns checkpoint-4."""
    out = tmp_path / "out"
    ckpt = out / "checkpoint-4"
    with open(tmp_path / "first.log", "ab") as log:
        proc = start([*cmd, "--stall_step", "4"], tmp_path, env, log)
        try:
            stalled = lambda: (out / "stalled").exists() and checkpoint_complete(ckpt)  # noqa: E731
            wait_until(stalled, proc, "the stall")
            time.sleep(settle)
        finally:
            kill_tree(proc)
    return ckpt


def started_again(cmd, env, ckpt):
    """CMD again without the stall, to its end: it passes CKPT over and resumes the one
    before. Returns its stderr."""
    done = subprocess.run(
        [str(c) for c in [*cmd, "--stall_step", "0"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"skipping {ckpt}: its save did not finish on every rank" in done.stderr
    assert rows(ckpt.parent / "checkpoint-6") == [1, 2, 3, 4, 5, 6]
    return done.stderr


def test_a_kill_before_rank_1_finished_its_save_passes_that_checkpoint_over(tmp_path):
    """Rank 1 waits inside its _save_checkpoint at step 4 (before its own
    rng_state_1.pth) while rank 0 writes the whole checkpoint-4, trainer_state.json
    included: rank 0 then waits at the barrier, so no save record is written. Killed
    there, checkpoint-4 looks complete to rank 0's files alone; the next start passes
    it over and both ranks resume checkpoint-2."""
    out = tmp_path / "out"
    env = job_env(out)
    cmd = [TRAIN_RESUME, "-o", out, "--", *torchrun(STALL, "--output_dir", out)]
    # (one second more: rank 0 past its save, at the barrier)
    ckpt = killed_in_the_save_of_step_4(cmd, tmp_path, env, settle=1.0)
    assert (ckpt / "rng_state_0.pth").is_file() and not (ckpt / "rng_state_1.pth").exists()
    saved = out / ".train-resume" / "saved"
    assert (saved / "checkpoint-2").is_file() and not (saved / "checkpoint-4").exists()
    stderr = started_again(cmd, env, ckpt)
    for rank in (0, 1):
        assert f"▶ handing off (rank {rank}): resume from {out}/checkpoint-2," in stderr
    assert (ckpt / "rng_state_1.pth").is_file()


def test_a_kill_before_trl_wrote_entropy_ctrl_state_passes_that_checkpoint_over(tmp_path):
    """TRL's GRPOTrainer (adaptive entropy) writes entropy_ctrl_state.json after the
    Trainer's save: killed in between, checkpoint-4 has a whole trainer_state.json but
    no entropy state (a resume from it would restart the entropy coefficient silently).
    It has no save record: passed over; checkpoint-2 is resumed."""
    out = tmp_path / "out"
    env = job_env(out)
    cmd = [TRAIN_RESUME, "-o", out, "--", sys.executable, STALL, "--grpo", "--output_dir", out]
    ckpt = killed_in_the_save_of_step_4(cmd, tmp_path, env)
    assert (out / "checkpoint-2" / "entropy_ctrl_state.json").is_file()
    assert not (ckpt / "entropy_ctrl_state.json").exists()
    stderr = started_again(cmd, env, ckpt)
    assert f"▶ handing off: resume from {out}/checkpoint-2," in stderr
    assert (ckpt / "entropy_ctrl_state.json").is_file()


def supervised(out, *options_and_command):
    """bash: source the library, decide (configure), then supervise the command."""
    script = (
        'source "$1"; shift; out=$1; shift\n'
        'wandb_resume::configure -q -o "$out" || exit 9\n'
        'wandb_resume::supervise -o "$out" "$@"\n'
    )
    return ["bash", "-c", script, "_", LIB, out, *options_and_command]


def signalled_after_checkpoint_50(cmd, tmp_path, env, signum):
    """Run CMD (the trainer under supervise, a checkpoint every 50 steps); once
    checkpoint-50 is saved, send SIGNUM to the supervising shell and wait for it.
    Returns (its exit status, its log, the pids below it at the signal, the step of the
    newest checkpoint)."""
    out = tmp_path / "out"
    with open(tmp_path / "job.log", "ab") as log:
        proc = start([*cmd, "--max_steps", "100000", "--save_steps", "50"], tmp_path, env, log)
        try:
            wait_until(lambda: checkpoint_complete(out / "checkpoint-50"), proc, "checkpoint-50")
            tree = descendants(proc.pid)
            proc.send_signal(signum)
            status = proc.wait(timeout=180)
        finally:
            if proc.poll() is None:
                kill_tree(proc)
    text = (tmp_path / "job.log").read_text()
    step = saved_steps(out)[-1]
    assert step > 50, text[-3000:]
    return status, text, tree, step


def test_supervise_signal_usr2_the_trainer_saves_and_exits_preempted(tmp_path):
    """--signal USR2: supervise forwards USR2 and exports TRAIN_RESUME_STOP_SIGNALS=
    USR2,TERM, so the trainer's callback saves a checkpoint and exits 140."""
    out = tmp_path / "out"
    cmd = supervised(out, "--signal", "USR2", "--", sys.executable, CAUSAL_LM, "--output_dir", out)
    env = job_env(out, WANDB_MODE="disabled")
    status, text, _, step = signalled_after_checkpoint_50(cmd, tmp_path, env, signal.SIGUSR2)
    assert status == 140, text[-3000:]
    assert f"⏸ SIGUSR2: saving checkpoint-{step} and stopping" in text
    assert f"⏹ stopped by SIGUSR2 (exit 140), newest checkpoint now checkpoint-{step}" in text


def test_supervise_torchrun_usr1_workers_save_preempted_though_torchrun_exits_1(tmp_path):
    """USR1 to the supervising shell (the B: form): torchrun dies of USR1, so only its
    workers (in sessions of their own; they catch it) get it; they save and exit 138,
    torchrun exits 1, and supervise calls it preempted from the callback's record. No
    process of the job is left; the next start resumes from that checkpoint."""
    out = tmp_path / "out"
    env = job_env(out)
    cmd = supervised(out, "--", *torchrun(CAUSAL_LM, "--output_dir", out))
    status, text, tree, step = signalled_after_checkpoint_50(cmd, tmp_path, env, signal.SIGUSR1)
    assert status == 1, text[-3000:]
    assert "SIGUSR1 to pid" in text and "the processes of the trainer that catch it" in text
    assert (
        f"⏹ stopped by SIGUSR1: the trainer saved checkpoint-{step} and stopped (exit 1 from "
        f"its launcher; recorded in {out}/.train-resume/ended), newest checkpoint now "
        f"checkpoint-{step}; not under SLURM: not requeued"
    ) in text, text[-3000:]
    assert not [pid for pid in tree if alive(pid)]
    decision = subprocess.run(
        [str(TRAIN_RESUME), "-q", "-o", out, "--explain", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert json.loads(decision.stdout)["checkpoint"] == str(out / f"checkpoint-{step}")
