"""make trials N=20: kill -9 a real tiny GRPO run at random moments, resume, check.

Each trial starts the same command as the demo, SIGKILLs it after a random delay
(sometimes before the first checkpoint, sometimes in the middle of a save), starts
it again through train-resume, and checks against one uninterrupted run:
  1. every step after the resume has the same loss (1e-6) and the final step is the same;
  2. all segments of the trial wrote to one W&B run id, the one stored in the checkpoint;
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


def trial(work, baseline, duration, rng):
    out = work / "out"
    cmd = grpo_command(out, MAX_STEPS, SAVE_STEPS)
    delay = rng.uniform(0.5, duration)
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
    ids = {rid for _, rid in wandb_segments(out)}
    if len(ids) != 1 or ids != {stored_run_id(out / f"checkpoint-{MAX_STEPS}")}:
        problems.append(f"W&B run ids {sorted(ids)}")
    if problems and start and start % EPOCH_STEPS == 0 and problems[0].startswith("loss"):
        problems[0] += " (resumed at an epoch boundary: transformers' known limit, see README)"
    return delay, killed, expected, problems


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else None)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        t0 = time.monotonic()
        assert (
            run_segment(
                grpo_command(base, MAX_STEPS, SAVE_STEPS), trainer_env(base), Path(tmp) / "base.log"
            )
            == 0
        )
        duration = time.monotonic() - t0
        baseline = {r["step"]: r["loss"] for r in log_history(base / f"checkpoint-{MAX_STEPS}")}
        passed = 0
        for i in range(1, n + 1):
            work = Path(tmp) / f"trial-{i}"
            work.mkdir()
            delay, killed, expected, problems = trial(work, baseline, duration, rng)
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
