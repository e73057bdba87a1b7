"""make demo: a real TRL GRPO run, killed with SIGKILL part way, resumed by train-resume.

The very same command runs twice:

    bin/train-resume -o runs/demo -- python examples/tiny_grpo.py --output_dir runs/demo ...

The first time it is a new run, killed (SIGKILL to the whole process tree, no
chance to clean up) at a step end after a checkpoint, once the W&B file on disk
holds rows past that checkpoint (the trainer waits at each step end for the word
to go on: see run_segment; the kill never depends on the machine's speed); the
second time train-resume finds the newest complete
checkpoint and the W&B run id kept with it, and the run finishes. The report shows
the run id of each segment (the same), the checkpoint resumed from, global_step
continuing, and two pictures: runs/demo/resume.png (the trainer's log) and
runs/demo/wandb-history.png (the W&B history as the run's .wandb files hold it: the
killed segment, the replayed steps kept out of W&B, the resumed segment; docs/wandb.md's
docs/wandb-history.png is a copy).

The helpers here are also used by the end-to-end tests (tests/python/test_e2e.py,
test_history.py) and bench/trials.py.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_RESUME = ROOT / "bin" / "train-resume"
TINY_GRPO = ROOT / "examples" / "tiny_grpo.py"


def trainer_env(out, **extra):
    """A job's environment: W&B offline with its run folders kept in the output dir."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WANDB_", "TRAIN_RESUME_")) and k != "RESUME_FROM_CHECKPOINT_DIR"
    }
    env.update(WANDB_MODE="offline", WANDB_DIR=str(out), HF_HUB_OFFLINE="1")
    env.update(TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def grpo_command(out, max_steps, save_steps, launcher=None):
    """bin/train-resume -o OUT -- <launcher or python> tiny_grpo.py ..."""
    args = [str(TINY_GRPO), "--output_dir", str(out), "--max_steps", str(max_steps)]
    args += ["--save_steps", str(save_steps), "--logging_steps", "1"]
    if launcher is None:
        trainer = [sys.executable, *args]
    else:  # e.g. torchrun ...: each rank goes through the shim itself
        trainer = [*launcher, "-m", "train_resume", *args]
    return [str(TRAIN_RESUME), "-o", str(out), "--", *trainer]


def checkpoint_complete(checkpoint):
    """True once trainer_state.json (HF writes it last) is whole and names the step."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return str(state.get("global_step")) == checkpoint.name.rpartition("-")[2]


def logged_past_checkpoint(out):
    """A kill_at for run_segment: true at the first step end where a checkpoint is
    complete and the run's W&B file on disk holds rows of a global step after the
    newest one (the resumed segment will train those steps again: "replayed").

    W&B offline writes its .wandb file in whole 32 KiB blocks and writes the rest only
    when the run finishes: wandb-core's transaction log (core/internal/stream/writer.go,
    read in wandb's source of 0.28; 0.31 keeps the blocks the same way) is flushed when
    it is opened, when online flow control reads work back from it, and when it is
    closed, and nothing a script can call flushes it in offline mode; a SIGKILL loses
    the unwritten tail. So the trainer goes on step by step (each
    step logs ~6 KB) until a block holding such a row is on disk; when it is, the
    trainer is waiting at a step end, and the kill lands there."""
    sys.path.insert(0, str(ROOT))
    from train_resume.wandb_records import facts

    def check(step):
        saved = [int(c.name[11:]) for c in out.glob("checkpoint-*") if checkpoint_complete(c)]
        files = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
        if not saved or len(files) != 1:
            return False
        last = facts(files[0])[6]
        return bool(last) and int(last) > max(saved)

    return check


def descendants(pid):
    """The pids of PID's descendants (from /proc)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid):
    """True while PID exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def kill_tree(proc):
    """SIGKILL PROC (a Popen) and every process below it, as a preemption does (torchrun
    starts its workers in sessions of their own, out of reach of a killpg): stop the tree
    so that nothing forks or exits meanwhile, then kill it all and wait until it is gone.
    The one place the demo, bench/trials.py and the tests kill a job."""
    tree = {proc.pid}
    try:  # at once: the moment of the kill is this signal, not the end of the scan
        os.kill(proc.pid, signal.SIGSTOP)
    except ProcessLookupError:
        pass
    for _ in range(3):
        tree.update(descendants(proc.pid))
        for pid in tree:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in tree - {proc.pid}):
        if time.monotonic() > deadline:
            raise RuntimeError(f"a killed process of {proc.args} is still there")
        time.sleep(0.05)


def run_segment(
    cmd,
    env,
    log_path,
    kill_after=None,
    progress=None,
    timeout=600,
    kill_when=None,
    poll=0.02,
    kill_at=None,
):
    """Run CMD, its output appended to LOG_PATH. Returns the exit status, or "killed"
    when it was killed (kill_tree: SIGKILL to it and everything below it), in one of
    three ways:
      kill_at=CALLABLE(step): at a step end the caller chose. CMD runs
        examples/tiny_grpo.py, which then waits at the end of every optimizer step
        (TINY_GRPO_STEP_GATE) until it is told to go on: the kill lands at the first
        step for which CALLABLE returns true, whatever the machine's load;
      kill_after=CHECKPOINT: so, at the first step end once CHECKPOINT is complete
        (the step after it: a kill after the last checkpoint cannot happen);
      kill_when=CALLABLE(): as soon as it returns true, checked every POLL seconds:
        a moment, not a step (bench/trials.py's random kills).
    PROGRESS(elapsed seconds) is called at each poll."""
    if kill_after is not None:
        kill_at = lambda step: checkpoint_complete(kill_after)  # noqa: E731
    gate = answered = None
    if kill_at is not None:
        gate = Path(tempfile.mkdtemp(prefix="tiny-grpo-gate-"))
        env = {**env, "TINY_GRPO_STEP_GATE": str(gate)}
        poll = min(poll, 0.005)
    started = time.monotonic()
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                while proc.poll() is None:
                    step = _gate_step(gate) if gate else None
                    if step is not None and step != answered:
                        if kill_at(step):
                            kill_tree(proc)
                            return "killed"
                        _write(gate / "go", f"{step}\n")
                        answered = step
                    if kill_when is not None and kill_when():
                        kill_tree(proc)
                        return "killed"
                    if time.monotonic() - started > timeout:
                        kill_tree(proc)
                        raise TimeoutError(f"{cmd} ran over {timeout} s; see {log_path}")
                    if progress:
                        progress(time.monotonic() - started)
                    time.sleep(poll)
            except BaseException:
                if proc.poll() is None:
                    kill_tree(proc)
                raise
        return proc.returncode
    finally:
        if gate is not None:
            shutil.rmtree(gate, ignore_errors=True)


def _gate_step(gate):
    """The step the trainer waits at (TINY_GRPO_STEP_GATE), or None."""
    try:
        return int((gate / "at").read_text())
    except (OSError, ValueError):
        return None


def _write(path, text):
    """Write TEXT to PATH whole (a reader never sees half of it)."""
    tmp = path.with_name(f".{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)


def log_history(checkpoint):
    """The per-step rows (those with a loss) of a checkpoint's trainer_state.json."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return [row for row in state["log_history"] if "loss" in row]


def stored_run_id(checkpoint):
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return state["stateful_callbacks"]["WandbResumeCallback"]["args"]["wandb_run_id"]


def wandb_segments(out):
    """[(run folder, run id)] of the W&B run folders in OUT/wandb, oldest first; a
    folder W&B had not written its run-<id>.wandb into yet (killed at start) is left out."""
    folders = sorted((out / "wandb").glob("*run-*"), key=lambda p: p.name.split("run-", 1)[1])
    found = [(f, next(f.glob("run-*.wandb"), None)) for f in folders if f.is_dir()]
    return [(f, data.name[4:-6]) for f, data in found if data is not None]


def plot(first, second, resume_step, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for ax, key in zip(axes, ("loss", "reward")):
        for rows, colour, label in (
            (first, "tab:blue", "segment 1 (killed)"),
            (second, "tab:orange", "segment 2 (resumed)"),
        ):
            ax.plot(
                [r["step"] for r in rows],
                [r.get(key) for r in rows],
                "o-",
                color=colour,
                label=label,
                markersize=4,
            )
        ax.axvline(
            resume_step, color="grey", linestyle="--", label=f"resumed at step {resume_step}"
        )
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[0].set_title("tiny GRPO, killed with SIGKILL and resumed: one W&B run")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("train/global_step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_history(killed, resumed, resume_step, replayed_log, path):
    """The W&B history of the run, as its .wandb files hold it: train/loss against
    train/global_step for the killed segment and the resumed one, the replayed steps
    shaded, and the values the trainer logged while replaying them (kept out of W&B,
    in log_history) as open circles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sys.path.insert(0, str(ROOT))
    from train_resume.wandb_records import config, history

    def points(path):
        rows = [r for r in history(path) if "train/loss" in r and "train/global_step" in r]
        return [r["train/global_step"] for r in rows], [r["train/loss"] for r in rows]

    replayed = config(resumed).get("train_resume/replayed_steps")
    fig, ax = plt.subplots(figsize=(8.0, 3.0))
    x, y = points(killed)
    ax.plot(x, y, "o-", color="tab:blue", markersize=3, label="killed segment (W&B rows)")
    x, y = points(resumed)
    ax.plot(x, y, "o-", color="tab:orange", markersize=3, label="resumed segment (W&B rows)")
    if replayed:
        again = [r for r in replayed_log if replayed[0] <= r["step"] <= replayed[1]]
        ax.axvspan(replayed[0] - 0.5, replayed[1] + 0.5, color="grey", alpha=0.15)
        ax.plot(
            [r["step"] for r in again],
            [r["loss"] for r in again],
            "o",
            mfc="none",
            color="tab:orange",
            markersize=6,
            label=f"replayed steps {replayed[0]}-{replayed[1]} (not sent again)",
        )
    ax.axvline(resume_step, color="grey", linestyle="--", label=f"checkpoint-{resume_step}")
    ax.set_xlabel("train/global_step")
    ax.set_ylabel("train/loss")
    ax.set_title("one W&B history across a SIGKILL and a resume", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def fail(message):
    """End the demo with MESSAGE (and where to look), exit 1."""
    print(f"\n  ❌ {message}; see runs/demo/demo.log")
    sys.exit(1)


def wandb_files(out):
    return set((out / "wandb").glob("offline-run-*/run-*.wandb"))


def progress_printer(out, label):
    """A run_segment PROGRESS: on a terminal, one line with the time and the newest
    checkpoint of OUT."""
    tty = sys.stdout.isatty()

    def show(elapsed):
        steps = [int(p.name[11:]) for p in out.glob("checkpoint-*") if p.name[11:].isdigit()]
        done = max(steps, default=0)
        if tty:
            print(
                f"\r  {label}: {elapsed:5.1f} s, newest checkpoint: {done or '-'}   ",
                end="",
                flush=True,
            )

    return show


def first_start(out, cmd, env, log_path, max_steps):
    """[1/2]: the new run, SIGKILLed. The trainer waits at each step end
    (examples/tiny_grpo.py's step gate) and is killed at the first one where W&B's file
    on disk holds rows past the newest checkpoint, so that the resumed segment replays
    steps W&B already holds; at the last step end (before the final save) in any case:
    a kill never lands after the last checkpoint, and never depends on the machine's
    speed."""
    past_checkpoint = logged_past_checkpoint(out)
    stopped = []

    def kill_at(step):
        if past_checkpoint(step) or step >= max_steps:
            stopped.append(step)
            return True
        return False

    t0 = time.monotonic()
    try:
        status = run_segment(
            cmd, env, log_path, kill_at=kill_at, progress=progress_printer(out, "[1/2] first start")
        )
    except TimeoutError as exc:
        fail(str(exc))
    if status != "killed":
        fail(f"the first start ended (exit {status}) before its step {max_steps}")
    print(f"\n[1/2] first start: SIGKILL at step {stopped[0]} ({time.monotonic() - t0:.1f} s)")


def explain(out, env):
    """The decision train-resume makes for OUT now (--explain --json): a resume."""
    explained = subprocess.run(
        [str(TRAIN_RESUME), "-q", "-o", str(out), "--explain", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    try:
        decision = json.loads(explained.stdout)
    except ValueError:
        fail(f"train-resume --explain failed (exit {explained.returncode}): {explained.stderr}")
    if decision.get("mode") != "resume":
        fail(f"train-resume would not resume: {decision}")
    return decision


def second_start(out, cmd, env, log_path):
    """[2/2]: the same command again, to the end."""
    t1 = time.monotonic()
    try:
        status = run_segment(
            cmd, env, log_path, progress=progress_printer(out, "[2/2] same command again")
        )
    except TimeoutError as exc:
        fail(str(exc))
    print(f"\n[2/2] same command again: exit {status} ({time.monotonic() - t1:.1f} s)")
    if status != 0:
        fail(f"the resumed run failed (exit {status})")


def one_file(files, which):
    """The one W&B run file of FILES (WHICH segment left it)."""
    if len(files) != 1:
        fail(f"{which} segment left {len(files)} W&B run files, not 1")
    (path,) = files
    return path


def report(out, decision, first, second, held, max_steps):
    """Print the report; returns whether the run held together."""
    resume_step = int(Path(decision["checkpoint"]).name[11:])
    segments = wandb_segments(out)
    ids = {run_id for _, run_id in segments}
    print("\nReport")
    for i, (folder, run_id) in enumerate(segments, 1):
        print(f"  segment {i}: W&B run {run_id}  ({folder.relative_to(ROOT)})")
    print(
        f"  resumed from: {Path(decision['checkpoint']).relative_to(ROOT)} (run id found by "
        f"{decision['run_id_source']}: {decision['run_id']})"
    )
    print(
        f"  global_step: segment 1 logged 1..{first[-1]['step']} before the checkpoint, "
        f"segment 2 went on at {second[0]['step']} and ended at {second[-1]['step']}"
    )
    if held and int(held) > resume_step:
        print(
            f"  W&B history: the killed segment's file held rows up to step {held}; "
            f"steps {resume_step + 1}-{held} were trained again and not sent twice"
        )
    else:
        print(
            f"  W&B history: the killed segment's file held no row past step {resume_step} "
            "(W&B writes it in 32 KiB blocks): no step was replayed"
        )
    print(
        f"  pictures: {(out / 'resume.png').relative_to(ROOT)}, the W&B history: "
        f"{(out / 'wandb-history.png').relative_to(ROOT)}"
    )
    return (
        len(segments) == 2
        and len(ids) == 1
        and decision["run_id"] in ids
        and second[0]["step"] == resume_step + 1
        and second[-1]["step"] == max_steps
    )


def main():
    out = ROOT / "runs" / "demo"
    # Not at an epoch boundary (8 steps here): transformers does not restore the data
    # order exactly there (docs/troubleshooting.md: "Known limits").
    max_steps, save_steps = 30, 10
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    log_path = out / "demo.log"
    env = trainer_env(out)
    cmd = grpo_command(out, max_steps, save_steps)
    print("train-resume demo: a tiny GRPO run, killed and resumed (log: runs/demo/demo.log)")
    print("  $ " + " ".join(cmd[:4] + ["python", "examples/tiny_grpo.py", "..."]))
    t0 = time.monotonic()
    first_start(out, cmd, env, log_path, max_steps)
    decision = explain(out, env)
    resumed_from = Path(decision["checkpoint"])
    resume_step = int(resumed_from.name[11:])
    first = log_history(resumed_from)
    killed_file = one_file(wandb_files(out), "the killed")
    sys.path.insert(0, str(ROOT))
    from train_resume.wandb_records import facts

    held = facts(killed_file)[6]
    second_start(out, cmd, env, log_path)
    final = out / f"checkpoint-{max_steps}"
    if not checkpoint_complete(final):
        fail(f"the resumed run ended without {final.name}")
    second = [r for r in log_history(final) if r["step"] > resume_step]
    if not first or not second:
        fail(f"no step logged {'before' if not first else 'after'} {resumed_from.name}")
    resumed_file = one_file(wandb_files(out) - {killed_file}, "the resumed")
    plot(first, second, resume_step, out / "resume.png")
    plot_history(killed_file, resumed_file, resume_step, second, out / "wandb-history.png")
    ok = report(out, decision, first, second, held, max_steps)
    print(f"  total: {time.monotonic() - t0:.1f} s")
    print("  ✅ one continuous W&B run" if ok else "  ❌ the resume did not hold together")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
