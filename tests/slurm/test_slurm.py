"""Preemption on a real one-host SLURM (tests/slurm/cluster.sh: two slurmd, two node
names, on this host): signal → checkpoint → requeue → the same W&B run; crash loops
capped; a finished run stays finished. A job of several tasks (srun -n 2, on one node
and on two) shares one decision; torchrun's workers under supervise get the stop
signal; a second job on the same output dir is refused.

Needs root (CI runs as root): `make test-slurm` fails loudly where SLURM cannot run.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from demo import checkpoint_complete, log_history, stored_run_id, wandb_segments  # noqa: E402

SBATCH = ROOT / "examples" / "slurm" / "grpo.sbatch"
MULTINODE = ROOT / "examples" / "slurm" / "multinode.sbatch"
TINY_GRPO = ROOT / "examples" / "tiny_grpo.py"
BIN = Path(sys.executable).parent
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    script = Path(__file__).with_name("cluster.sh")
    try:
        started = subprocess.run([str(script), "start", str(state)], capture_output=True, text=True)
        if started.returncode != 0:
            pytest.fail(f"cannot start SLURM here:\n{started.stderr}", pytrace=False)
        yield str(state / "slurm.conf")
    finally:
        subprocess.run([str(script), "stop", str(state)], check=False)


def env(conf, **extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "TRAIN_RESUME_"))}
    e.update(SLURM_CONF=conf, PYTHON=sys.executable, TRAIN_RESUME_HOME=str(ROOT))
    e.update({k: str(v) for k, v in extra.items()})
    return e


def sbatch(conf, work, *args, script=SBATCH, options=(), **extra):
    out = subprocess.run(
        ["sbatch", "--parsable", "--export=ALL", *map(str, options), str(script), *map(str, args)],
        cwd=work,
        env=env(conf, OUT=work / "out", **extra),
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().split(";")[0]


def job(conf, jid):
    text = subprocess.run(
        ["scontrol", "show", "job", "-o", jid],
        env=env(conf),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(re.findall(r"(\w+)=(\S*)", text))


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def node_idle(conf):
    out = subprocess.run(
        ["sinfo", "-h", "-o", "%t"], env=env(conf), capture_output=True, text=True, timeout=30
    )
    return out.stdout.strip() == "idle"


def run_to_end(conf, jid, timeout=400):
    """Release each requeue hold (skip the ~120 s wait) until the job ends; but only
    once the node has finished with the previous run and a little later (the hold's
    own purpose: a job started too soon fails with "Job credential revoked")."""

    held_since = {}

    def ended():
        info = job(conf, jid)
        if info["JobState"] == "PENDING" and info.get("Reason") == "BeginTime":
            # slurmd keeps revocations by the second: release 2 s after the requeue.
            since = held_since.setdefault(info.get("Restarts"), time.monotonic())
            if time.monotonic() - since >= 2 and node_idle(conf):
                subprocess.run(
                    ["scontrol", "update", f"jobid={jid}", "starttime=now"],
                    env=env(conf),
                    check=True,
                )
        return info if info["JobState"] in TERMINAL else None

    return wait_for(ended, timeout, f"job {jid} to end")


def log_of(work, jid):
    # (srun interleaves its tasks' output with the shell's: a progress bar may be cut
    # inside a UTF-8 character)
    (path,) = work.glob(f"tiny-grpo*-{jid}.out")
    return path.read_text(errors="replace")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trainer_processes(out):
    """The pids of the Python processes running the tiny GRPO trainer on OUT (not srun,
    whose command line holds it too)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        python = Path(argv[0]).name.startswith("python")
        if python and str(TINY_GRPO) in argv and str(out) in argv:
            found.append(int(cmdline.parent.name))
    return found


def preempt_and_resume(conf, work, scancel_args, stopped, **extra):
    """Start the job, signal it with `scancel SCANCEL_ARGS JOB` once checkpoint-10 is
    saved; check that the trainer saved, exited 138 (preempted, not finished), that the
    job was requeued once and resumed the same W&B run to the end, and that DONE is
    written only then. STOPPED: the regex of supervise's reason for the requeue."""
    out = work / "out"
    jid = sbatch(conf, work, "--max_steps", 100, "--save_steps", 10, **extra)
    wait_for(lambda: checkpoint_complete(out / "checkpoint-10"), 300, "checkpoint-10")
    assert not (out / "DONE").exists()
    subprocess.run(["scancel", *scancel_args, jid], env=env(conf), check=True)
    info = run_to_end(conf, jid)
    log = log_of(work, jid)
    assert info["JobState"] == "COMPLETED", log[-3000:]
    assert info["Restarts"] == "1", log[-4000:]
    step = int(re.search(r"⏸ SIGUSR1: saving checkpoint-(\d+) and stopping", log).group(1))
    stopped_at = out / f"checkpoint-{step}"
    assert checkpoint_complete(stopped_at)
    assert f"⏹ preempted (SIGUSR1): checkpoint-{step} is saved; exiting with status 138" in log
    assert re.search(
        rf"🔁 {stopped} \(exit 138\), newest checkpoint now checkpoint-{step}; "
        rf"requeued job {jid} \(restart 1 of at most 5\)",
        log,
    ), log[-3000:]
    assert f"== job {jid} start 1 " in log
    assert f"🔄 resuming from checkpoint: {stopped_at} (the newest complete checkpoint" in log
    steps = [row["step"] for row in log_history(out / "checkpoint-100")]
    assert steps == list(range(1, 101))
    segments = wandb_segments(out)
    assert len(segments) == 2
    assert {run_id for _, run_id in segments} == {stored_run_id(stopped_at)}
    assert (out / "DONE").is_file()
    assert "✅ finished: wrote" in log
    time.sleep(5)
    later = job(conf, jid)
    assert (later["JobState"], later["Restarts"]) == ("COMPLETED", "1")
    assert log_of(work, jid).count("▶ supervising pid") == 2


def test_preempted_through_the_batch_shell_saves_requeues_and_resumes(cluster, tmp_path):
    """`scancel -b -s USR1` (and `--signal=B:USR1@N`): the batch shell's supervise
    forwards the signal to the trainer."""
    preempt_and_resume(cluster, tmp_path, ["-b", "-s", "USR1"], "stopped by SIGUSR1")


def test_usr1_sent_to_the_trainer_directly_is_preempted_not_finished(cluster, tmp_path):
    """`scancel -s USR1` without -b (and `--signal=USR1@N`) signals the job's steps only:
    the trainer run as a step (SRUN=1), not the batch shell. It saves and exits 138, so
    supervise requeues and never writes DONE for it (before, the trainer exited 0 and
    the run was taken for finished)."""
    preempt_and_resume(
        cluster,
        tmp_path,
        ["-s", "USR1"],
        "preempted: the trainer saved and stopped on SIGUSR1",
        SRUN=1,
    )


def test_a_crash_loop_is_requeued_at_most_the_cap(cluster, tmp_path):
    crash = tmp_path / "crash.py"
    crash.write_text("import sys\nprint('crashing at once')\nsys.exit(3)\n")
    jid = sbatch(cluster, tmp_path, TRAINER=crash, MAX_RESTARTS=2)
    info = run_to_end(cluster, jid)
    log = log_of(tmp_path, jid)
    assert info["JobState"] == "FAILED", log[-3000:]
    assert info["Restarts"] == "2"
    assert info["ExitCode"] == "3:0"
    assert log.count("▶ supervising pid") == 3
    assert "🔁 crashed (exit 3), no progress: newest checkpoint still none; requeued" in log
    assert (
        "❌ error: crashed (exit 3), no progress: newest checkpoint still none; "
        "not requeued: SLURM_RESTART_COUNT=2 reached --max-restarts 2"
    ) in log


def test_a_finished_run_is_final(cluster, tmp_path):
    out = tmp_path / "out"
    jid = sbatch(cluster, tmp_path, "--max_steps", 4)
    info = run_to_end(cluster, jid)
    assert info["JobState"] == "COMPLETED", log_of(tmp_path, jid)[-3000:]
    assert (out / "DONE").is_file()
    # The scheduler starts it again anyway (a late requeue): nothing is trained again.
    subprocess.run(["scontrol", "requeue", jid], env=env(cluster), check=True)
    info = run_to_end(cluster, jid)
    log = log_of(tmp_path, jid)
    assert info["JobState"] == "COMPLETED"
    assert log.count("▶ supervising pid") == 1
    assert "✅ finished: wrote" in log
    # A third start, submitted anew on the same output dir: nothing runs either.
    again = sbatch(cluster, tmp_path, "--max_steps", 4)
    assert run_to_end(cluster, again)["JobState"] == "COMPLETED"
    assert "▶ supervising pid" not in log_of(tmp_path, again)
    assert f"✅ {out}/DONE exists" in log_of(tmp_path, again)
    assert f"✅ {out}/DONE exists: the run is finished; nothing to run, nothing to requeue" in log
    assert json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())["global_step"] == 4


@pytest.mark.parametrize(("launch", "nodes"), [("ranks", 1), ("ranks", 2), ("torchrun", 2)])
def test_two_tasks_of_one_job_resume_from_one_checkpoint_into_one_run(
    cluster, tmp_path, launch, nodes
):
    """examples/slurm/multinode.sbatch: `srun -n 2 bin/train-resume -o OUT -- python
    tiny_grpo.py` with RANK/WORLD_SIZE set from SLURM's variables, on one node and on
    two; and `srun --ntasks-per-node=1 bin/train-resume -o OUT -- torchrun --nnodes 2`
    on two. Killed after a checkpoint (the ranks SIGKILLed: a node lost), requeued: one
    task decides, the other uses its decision, both ranks resume from the same
    checkpoint, into one W&B run."""
    out = tmp_path / "out"
    options = ["--nodes", nodes, "--ntasks", 2, "--ntasks-per-node", 2 // nodes]
    options += ["--cpus-per-task", 1]
    jid = sbatch(
        cluster,
        tmp_path,
        "--max_steps",
        30,
        "--save_steps",
        10,
        script=MULTINODE,
        options=options,
        LAUNCH=launch,
        TORCHRUN=BIN / "torchrun",
        MASTER_PORT=free_port(),
        OMP_NUM_THREADS=1,
    )
    wait_for(lambda: checkpoint_complete(out / "checkpoint-10"), 400, "checkpoint-10")
    first = log_of(tmp_path, jid)
    assert f"🤝 using the decision of job slurm-{jid}-r0@trainresume" in first, first[-3000:]
    # The ranks (and torchrun's agents) SIGKILLed at once, as when nodes are lost: srun
    # ends the step, supervise requeues.
    ranks = trainer_processes(out)
    assert len(ranks) == (2 if launch == "ranks" else 4), ranks
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in ranks:
            os.kill(pid, sig)
    info = run_to_end(cluster, jid, timeout=600)
    log = log_of(tmp_path, jid)
    assert info["JobState"] == "COMPLETED", log[-4000:]
    assert info["Restarts"] == "1", log[-4000:]
    assert info["NumNodes"] == str(nodes)
    killed = r"🔁 (crashed|killed by SIGKILL) \(exit \d+\), newest checkpoint now checkpoint-\d+; "
    killed += f"requeued job {jid}"
    assert re.search(killed, log), log[-4000:]
    restart = log.partition(f"== job {jid} start 1 ")[2]
    used = f"🤝 using the decision of job slurm-{jid}-r1@trainresume, made by pid"
    assert restart.count(used) == 1, restart[-4000:]
    handed = re.findall(r"▶ handing off \(rank (\d)\): resume from (\S+),", restart)
    assert sorted(rank for rank, _ in handed) == ["0", "1"], restart[-4000:]
    (chosen,) = {Path(path) for _, path in handed}
    assert chosen.parent == out and checkpoint_complete(chosen)
    steps = [row["step"] for row in log_history(out / "checkpoint-30")]
    assert steps == list(range(1, 31))
    segments = wandb_segments(out)
    assert len(segments) == 2
    assert {run_id for _, run_id in segments} == {stored_run_id(chosen)}
    assert (out / "DONE").is_file()


@pytest.mark.parametrize("sig", ["USR1", "TERM"])
def test_torchrun_workers_under_supervise_save_on_the_batch_signal(cluster, tmp_path, sig):
    """examples/slurm/grpo.sbatch with NPROC=2 (torchrun --nproc_per_node 2 under
    supervise), the signal sent to the batch shell (`scancel -b`, as --signal=B:...):
    the workers (in sessions of their own) save a checkpoint beyond the last periodic
    one, the job is logged preempted and requeued although torchrun exits 1, no process
    of the old job is left, and the next start resumes from that checkpoint."""
    out = tmp_path / "out"
    jid = sbatch(
        cluster,
        tmp_path,
        "--max_steps",
        60,
        "--save_steps",
        10,
        NPROC=2,
        TORCHRUN=BIN / "torchrun",
        MASTER_PORT=free_port(),
        OMP_NUM_THREADS=1,
    )
    wait_for(lambda: checkpoint_complete(out / "checkpoint-10"), 400, "checkpoint-10")
    subprocess.run(["scancel", "-b", "-s", sig, jid], env=env(cluster), check=True)
    wait_for(lambda: "🔁" in log_of(tmp_path, jid), 300, "the requeue")
    # Nothing of the old job trains on: supervise waited for every process it saw.
    assert trainer_processes(out) == []
    info = run_to_end(cluster, jid)
    log = log_of(tmp_path, jid)
    assert info["JobState"] == "COMPLETED", log[-4000:]
    assert info["Restarts"] == "1", log[-4000:]
    step = int(re.search(rf"⏸ SIG{sig}: saving checkpoint-(\d+) and stopping", log).group(1))
    assert step > 10
    forwarded = rf"⏸ got SIG{sig}: .*SIG{sig} to pid [0-9 ]+: the processes of the trainer"
    assert re.search(forwarded, log), log[-4000:]
    stopped = re.search(
        rf"🔁 stopped by SIG{sig}(: the trainer saved checkpoint-{step} and stopped)? "
        rf"\(exit (\d+)[^)]*\), newest checkpoint now checkpoint-{step}; requeued job {jid}",
        log,
    )
    assert stopped, log[-4000:]
    assert stopped.group(2) != "0"
    assert f"🔄 resuming from checkpoint: {out}/checkpoint-{step} (the newest complete" in log
    assert "killed them (SIGKILL)" not in log
    steps = [row["step"] for row in log_history(out / "checkpoint-60")]
    assert steps == list(range(1, 61))
    segments = wandb_segments(out)
    assert len(segments) == 2
    assert {run_id for _, run_id in segments} == {stored_run_id(out / f"checkpoint-{step}")}
    assert (out / "DONE").is_file()


def test_a_second_job_running_the_recipe_on_one_dir_is_refused_naming_the_first(cluster, tmp_path):
    """Two jobs of examples/slurm/grpo.sbatch on one output dir: the second stops at
    its configure (exit 1, not requeued), naming the first; the first goes on."""
    out = tmp_path / "out"
    first = sbatch(cluster, tmp_path, "--max_steps", 30, "--save_steps", 10)
    wait_for(lambda: checkpoint_complete(out / "checkpoint-10"), 400, "checkpoint-10")
    second = sbatch(cluster, tmp_path, "--max_steps", 30, "--save_steps", 10)
    info = run_to_end(cluster, second)
    log = log_of(tmp_path, second)
    assert (info["JobState"], info["ExitCode"], info["Restarts"]) == ("FAILED", "1:0", "0"), log
    assert re.search(
        rf"❌ error: output dir {re.escape(str(out))} is in use by job "
        rf"slurm-{first}-r0@trainresume \(host \S+, pid \d+ \S+ alive; ",
        log,
    ), log
    assert "▶ supervising" not in log
    assert run_to_end(cluster, first)["JobState"] == "COMPLETED"
    assert (out / "DONE").is_file()
    assert len(wandb_segments(out)) == 1
