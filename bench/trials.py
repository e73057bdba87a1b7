"""make trials N=20: kill -9 a real tiny GRPO run at random moments, resume, check.

Each trial starts the same command as the demo, SIGKILLs it after a random delay
(sometimes before the first checkpoint, sometimes in the middle of a save), starts
it again through train-resume, and checks against one uninterrupted run:
  1. every step after the resume has the same loss (1e-6) and the final step is the same;
  2. a resumed segment writes to the W&B run id stored in the checkpoint it resumed
     from (a start before the first checkpoint is a new run, with a new id);
  3. it resumed from the newest complete checkpoint there was (or started anew if none).
It prints one line a trial and how many of N passed. Not part of `make test`.
"""

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from demo import (  # noqa: E402
    TRAIN_RESUME,
    checkpoint_complete,
    grpo_command,
    log_history,
    run_segment,
    stored_run_id,
    trainer_env,
    wandb_segments,
)

MAX_STEPS, SAVE_STEPS = 12, 2
EPOCH_STEPS = 8  # 8 prompts, one prompt (2 generations) a step


def newest_complete(out):
    done = [p for p in out.glob("checkpoint-*") if checkpoint_complete(p)]
    return max(done, key=lambda p: int(p.name[11:]), default=None)


def trial(work, baseline, window, rng):
    out = work / "out"
    cmd = grpo_command(out, MAX_STEPS, SAVE_STEPS)
    # Mostly while it trains and saves (most of a start is imports), sometimes earlier.
    first, end = window
    delay = rng.uniform(first - 0.2, end) if rng.random() < 0.85 else rng.uniform(0.3, first)
    proc = subprocess.Popen(
        cmd,
        env=trainer_env(out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        proc.kill()
        subprocess.run(["pkill", "-9", "-s", str(proc.pid)], check=False)
    proc.wait()
    expected = newest_complete(out)
    decision = json.loads(
        subprocess.run(
            [str(TRAIN_RESUME), "-q", "-o", str(out), "--explain", "--json"],
            env=trainer_env(out),
            capture_output=True,
            text=True,
        ).stdout
    )
    problems = []
    if (decision["checkpoint"] or None) != (str(expected) if expected else None):
        problems.append(f"decision {decision['checkpoint']} != newest complete {expected}")
    if run_segment(cmd, trainer_env(out), work / "log") != 0:
        return delay, killed, expected, ["resumed run failed"]
    final = {r["step"]: r["loss"] for r in log_history(out / f"checkpoint-{MAX_STEPS}")}
    start = int(expected.name[11:]) if expected else 0
    for step, loss in baseline.items():
        if step > start and abs(final.get(step, float("nan")) - loss) > 1e-6:
            problems.append(f"loss differs at step {step}")
            break
    # A resume continues the run stored in its checkpoint; a start before the first
    # checkpoint is a new run (a new id), as the decision says.
    final_id = stored_run_id(out / f"checkpoint-{MAX_STEPS}")
    last_segment = wandb_segments(out)[-1][1]
    if expected is not None and stored_run_id(expected) != final_id:
        problems.append(f"resumed run {final_id} is not the checkpoint's {stored_run_id(expected)}")
    if last_segment != final_id:
        problems.append(
            f"the last W&B run folder is {last_segment}, the checkpoint says {final_id}"
        )
    if problems and start and start % EPOCH_STEPS == 0 and problems[0].startswith("loss"):
        problems[0] += " (resumed at an epoch boundary: transformers' known limit, see README)"
    return delay, killed, expected, problems


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else None)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        t0 = time.monotonic()
        first = []

        def watch(elapsed):
            if not first and checkpoint_complete(base / f"checkpoint-{SAVE_STEPS}"):
                first.append(elapsed)

        cmd = grpo_command(base, MAX_STEPS, SAVE_STEPS)
        assert run_segment(cmd, trainer_env(base), Path(tmp) / "base.log", progress=watch) == 0
        window = (first[0] if first else 0.5, time.monotonic() - t0)
        print(f"uninterrupted run: first checkpoint at {window[0]:.1f} s, end at {window[1]:.1f} s")
        baseline = {r["step"]: r["loss"] for r in log_history(base / f"checkpoint-{MAX_STEPS}")}
        passed = 0
        for i in range(1, n + 1):
            work = Path(tmp) / f"trial-{i}"
            work.mkdir()
            delay, killed, expected, problems = trial(work, baseline, window, rng)
            passed += not problems
            where = expected.name if expected else "no checkpoint (new run)"
            print(
                f"trial {i:3d}: kill at {delay:4.1f} s{'' if killed else ' (had finished)'}"
                f", resumed from {where}: {'ok' if not problems else '; '.join(problems)}",
                flush=True,
            )
            shutil.rmtree(work)
    print(f"{passed} of {n} trials passed")
    sys.exit(0 if passed == n else 1)


if __name__ == "__main__":
    main()
