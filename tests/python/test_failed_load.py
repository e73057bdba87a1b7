"""A checkpoint that looks whole but fails to load costs one failed start, not a crash
loop (issue 10, "Learn from a failed load"), end to end through bin/train-resume.

A real run (tests/python/shapes/causal_lm.py, W&B offline) saves checkpoint-2 and
checkpoint-4. Then a 4 KiB block of zeros lands on the local header of the record in
the middle of checkpoint-4's optimizer.pt (what a node crash can leave): same size,
the end-of-central-directory record intact, so the decision's checks pass it, but
torch's zip reader fails on it. The very same command is started again, twice:
  - the 2nd start resumes from checkpoint-4, the trainer raises while loading it, the
    hook records OUTPUT_DIR/.train-resume/failed/checkpoint-4, the start fails (exit
    non-zero) without training a step or starting a W&B run;
  - the 3rd start skips checkpoint-4 with the recorded reason, resumes from
    checkpoint-2 and finishes; the new checkpoint-4 is chosen again after it.
"""

import json
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import TRAIN_RESUME, run

pytest.importorskip("transformers")

SCRIPT = Path(__file__).with_name("shapes") / "causal_lm.py"
MAX_STEPS = 4


def state(checkpoint):
    return json.loads((checkpoint / "trainer_state.json").read_text())


def run_folders(out):
    return sorted(p.name for p in (out / "wandb").glob("offline-run-*"))


def listing(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def zero_a_block_in_the_middle(path):
    """A 4 KiB block of zeros over the local header of the zip record nearest the middle
    of PATH (a torch save): the size and the end record stay as they were."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        record = min(z.infolist(), key=lambda i: abs(i.header_offset - len(data) // 2))
    start = record.header_offset // 4096 * 4096
    assert 0 < start and start + 4096 < len(data) - 4096, "optimizer.pt too small to damage"
    data[start : start + 4096] = bytes(4096)
    path.write_bytes(data)


def decide(out, work):
    result = run([TRAIN_RESUME, "-q", "-o", out, "--explain", "--json"], work, WANDB_DIR=out)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_checkpoint_that_fails_to_load_costs_one_failed_start_then_the_one_before(tmp_path):
    work = tmp_path / "work dir"
    work.mkdir()
    out = work / "out"
    cmd = [TRAIN_RESUME, "-o", out, "--", sys.executable, SCRIPT, "--output_dir", out]
    cmd += ["--max_steps", MAX_STEPS, "--save_steps", 2]

    first = run(cmd, work, WANDB_DIR=out)
    assert first.returncode == 0, first.stderr[-3000:]
    damaged, previous = out / f"checkpoint-{MAX_STEPS}", out / "checkpoint-2"
    assert state(damaged)["global_step"] == MAX_STEPS
    run_id = state(damaged)["stateful_callbacks"]["WandbResumeCallback"]["args"]["wandb_run_id"]
    zero_a_block_in_the_middle(damaged / "optimizer.pt")
    # The damage is out of sight of the decision: it would resume from checkpoint-4.
    assert decide(out, work)["checkpoint"] == str(damaged)
    before = listing(damaged), listing(previous), run_folders(out)

    # 2nd start: the trainer fails on checkpoint-4; the hook records it; no fresh start.
    second = run(cmd, work, WANDB_DIR=out)
    assert second.returncode != 0
    assert f"🔄 resuming from checkpoint: {damaged}" in second.stderr
    record = out / ".train-resume" / "failed" / damaged.name
    text = record.read_text()
    assert text.count("\n") == 1 and text.endswith("\n")
    line = text.rstrip("\n")
    error_type, _, message = line.partition(": ")
    assert error_type and message
    assert f"❌ the trainer failed to load {damaged}: {line} (recorded in {record})" in (
        second.stderr
    )
    assert f"{error_type}: " in second.stderr.split("(recorded in", 1)[1]  # the error re-raised
    # Nothing trained, no W&B segment started, nothing written into the checkpoints.
    assert (listing(damaged), listing(previous), run_folders(out)) == before

    # The decision now passes over checkpoint-4, with the recorded reason.
    decision = decide(out, work)
    assert decision["checkpoint"] == str(previous)
    assert decision["run_id"] == run_id
    reasons = [s["reason"] for s in decision["skipped"] if s["path"] == str(damaged)]
    assert len(reasons) == 1 and reasons[0].startswith(f"the trainer failed to load it: {line}")

    # 3rd start: skips checkpoint-4, resumes from checkpoint-2, finishes in the same run.
    third = run(cmd, work, WANDB_DIR=out)
    assert third.returncode == 0, third.stderr[-3000:]
    assert f"⚠️ skipping {damaged}: the trainer failed to load it: {line}" in (third.stderr)
    assert f"🔄 resuming from checkpoint: {previous}" in third.stderr
    final = state(damaged)
    assert final["global_step"] == MAX_STEPS
    assert [r["step"] for r in final["log_history"] if "loss" in r] == list(range(1, MAX_STEPS + 1))
    # The restored rows are checkpoint-2's own.
    restored = [r for r in state(previous)["log_history"] if "loss" in r]
    assert [r for r in final["log_history"] if "loss" in r][: len(restored)] == restored
    assert len(run_folders(out)) == len(before[2]) + 1
    assert final["stateful_callbacks"]["WandbResumeCallback"]["args"]["wandb_run_id"] == run_id
    # The record is older than the new save of checkpoint-4: that save is chosen again.
    assert decide(out, work)["checkpoint"] == str(damaged)
