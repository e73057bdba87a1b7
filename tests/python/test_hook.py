"""The hand-off in a real transformers Trainer (tests/python/shapes/causal_lm.py, W&B
offline): bare train() resumes, an explicit path wins, False warns, the safety net stops
a start at step 0 before W&B starts, and a checkpoint that fails to load is recorded."""

import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TRAIN_RESUME, run

pytest.importorskip("transformers")

SCRIPT = Path(__file__).with_name("shapes") / "causal_lm.py"
BOOTSTRAP = f"{ROOT / 'train_resume' / 'bootstrap'}:{ROOT}"


def state(checkpoint):
    return json.loads((checkpoint / "trainer_state.json").read_text())


def steps(checkpoint):
    return [row["step"] for row in state(checkpoint)["log_history"] if "loss" in row]


def run_folders(out):
    return sorted(p.name for p in (out / "wandb").glob("offline-run-*"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run of 4 steps (checkpoint-2, checkpoint-4) made through train-resume."""
    work = tmp_path_factory.mktemp("trained")
    out = work / "out"
    cmd = [TRAIN_RESUME, "-o", out, "--", sys.executable, SCRIPT, "--output_dir", out]
    result = run([*cmd, "--max_steps", 4], work, WANDB_DIR=out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert steps(out / "checkpoint-4") == [1, 2, 3, 4]
    return out


def copy_of(trained, tmp_path, *checkpoints):
    out = tmp_path / "out"
    for name in checkpoints:
        shutil.copytree(trained / name, out / name)
    return out


def trainer(out, *args, **env):
    """The script, with the bootstrap on PYTHONPATH as train-resume puts it."""
    cmd = [sys.executable, SCRIPT, "--output_dir", out, *args]
    env.setdefault("WANDB_MODE", "disabled")
    return run(cmd, out.parent, PYTHONPATH=BOOTSTRAP, **env)


def test_bare_train_resumes_from_the_decided_checkpoint(trained, tmp_path):
    out = copy_of(trained, tmp_path, "checkpoint-2")
    result = trainer(out, "--max_steps", 4, TRAIN_RESUME_CHECKPOINT=out / "checkpoint-2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"▶ handing off: resume from {out / 'checkpoint-2'}" in result.stderr
    assert steps(out / "checkpoint-4") == [1, 2, 3, 4]
    assert (
        state(out / "checkpoint-4")["log_history"][:2]
        == state(out / "checkpoint-2")["log_history"][:2]
    )


def test_true_resumes_from_the_decided_checkpoint_not_the_highest_numbered_one(trained, tmp_path):
    """train(resume_from_checkpoint=True) means "the latest": the decision's, which
    passed over a checkpoint-4 with no trainer_state.json (HF's own pick would fail)."""
    out = copy_of(trained, tmp_path, "checkpoint-2", "checkpoint-4")
    (out / "checkpoint-4" / "trainer_state.json").unlink()
    ckpt = out / "checkpoint-2"
    result = trainer(out, "--max_steps", 3, "--resume", "true", TRAIN_RESUME_CHECKPOINT=ckpt)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"▶ handing off: resume from {ckpt}" in result.stderr
    assert steps(out / "checkpoint-3") == [1, 2, 3]


def test_an_explicit_path_given_by_the_script_wins_with_one_line(trained, tmp_path):
    out = copy_of(trained, tmp_path, "checkpoint-2", "checkpoint-4")
    decided, own = out / "checkpoint-4", out / "checkpoint-2"
    result = trainer(out, "--max_steps", 4, "--resume", own, TRAIN_RESUME_CHECKPOINT=decided)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if "differs from the decision" in line]
    assert lines == [
        f"train-resume: ⚠️ the script's resume_from_checkpoint '{own}' differs from the "
        f"decision '{decided}'; keeping the script's"
    ]
    assert "handing off" not in result.stderr
    # It resumed from checkpoint-2: steps 3 and 4 were trained again, over checkpoint-4.
    assert state(out / "checkpoint-4")["global_step"] == 4
    assert "❌" not in result.stderr


def test_an_explicit_path_equal_to_the_decision_says_nothing_more(trained, tmp_path):
    out = copy_of(trained, tmp_path, "checkpoint-2")
    ckpt = out / "checkpoint-2"
    result = trainer(out, "--max_steps", 4, "--resume", ckpt, TRAIN_RESUME_CHECKPOINT=ckpt)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "differs" not in result.stderr
    assert steps(out / "checkpoint-4") == [1, 2, 3, 4]


def test_false_is_respected_with_a_warning_and_the_safety_net_stops_it_before_wandb(
    trained, tmp_path
):
    """The script forces a fresh start under train-resume: a clear error, exit 1, no W&B
    run folder for the segment, no failed-load record."""
    out = tmp_path / "out"
    shutil.copytree(trained, out)
    before = run_folders(out)
    assert before
    cmd = [TRAIN_RESUME, "-o", out, "--", sys.executable, SCRIPT, "--output_dir", out]
    result = run([*cmd, "--max_steps", 6, "--resume", "false"], tmp_path, WANDB_DIR=out)
    assert result.returncode == 1
    ckpt = out / "checkpoint-4"
    run_id = state(ckpt)["stateful_callbacks"]["WandbResumeCallback"]["args"]["wandb_run_id"]
    assert (
        "train-resume: ⚠️ the script refuses a resume (train(resume_from_checkpoint=False)), "
        f"although this job resumes from {ckpt}: not resuming"
    ) in result.stderr
    assert (
        f"train-resume: ❌ training would start at step 0, but this job resumes from {ckpt} "
        f"(W&B run {run_id}, WANDB_RESUME=must); likely cause: the script called "
        "train(resume_from_checkpoint=False). Stopped before the first step"
    ) in result.stderr
    assert "FreshStartError" in result.stderr
    assert run_folders(out) == before
    assert not (out / ".train-resume" / "failed").exists()
    assert not (out / "checkpoint-6").exists()


def test_allow_fresh_start_turns_the_safety_net_into_a_warning(trained, tmp_path):
    out = copy_of(trained, tmp_path, "checkpoint-2")
    result = trainer(
        out,
        "--max_steps",
        2,
        "--resume",
        "false",
        TRAIN_RESUME_CHECKPOINT=out / "checkpoint-2",
        TRAIN_RESUME_ALLOW_FRESH_START=1,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "⚠️ training starts at step 0 although this job resumes from" in result.stderr
    assert "TRAIN_RESUME_ALLOW_FRESH_START=1: going on" in result.stderr
    assert steps(out / "checkpoint-2") == [1, 2]


def test_the_safety_net_stops_a_trainer_that_goes_around_trainer_train(trained, tmp_path):
    out = copy_of(trained, tmp_path, "checkpoint-2")
    result = trainer(out, "--resume", "bypass", TRAIN_RESUME_CHECKPOINT=out / "checkpoint-2")
    assert result.returncode == 1
    assert "❌ training would start at step 0" in result.stderr
    assert "likely cause: Trainer.train() was not called" in result.stderr
    assert not (out / "checkpoint-4").exists()


@pytest.mark.parametrize("damage", ["truncated weights", "no trainer_state.json"])
def test_a_checkpoint_that_fails_to_load_is_recorded_beside_it_and_the_error_raised(
    trained, tmp_path, damage
):
    out = copy_of(trained, tmp_path, "checkpoint-2")
    ckpt = out / "checkpoint-2"
    if damage == "truncated weights":
        weights = ckpt / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
    else:
        (ckpt / "trainer_state.json").unlink()
    listing = sorted(p.name for p in ckpt.iterdir())
    result = trainer(out, "--max_steps", 4, TRAIN_RESUME_CHECKPOINT=ckpt)
    assert result.returncode == 1
    record = out / ".train-resume" / "failed" / "checkpoint-2"
    line = record.read_text()
    assert line.count("\n") == 1 and line.endswith("\n")
    error_type, _, message = line.rstrip("\n").partition(": ")
    assert error_type and message
    assert f"{error_type}: " in result.stderr  # the trainer's own error, re-raised
    assert f"❌ the trainer failed to load {ckpt}: {line.rstrip()} (recorded in {record})" in (
        result.stderr
    )
    if damage == "no trainer_state.json":
        assert error_type == "FileNotFoundError"
    assert sorted(p.name for p in ckpt.iterdir()) == listing  # nothing written inside


def test_the_callback_can_be_turned_off(trained, tmp_path):
    out = copy_of(trained, tmp_path, "checkpoint-2")
    result = trainer(
        out, "--max_steps", 4, TRAIN_RESUME_CHECKPOINT=out / "checkpoint-2", TRAIN_RESUME_CALLBACK=0
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # The callback's slot is the one restored from checkpoint-2, not counted up by a callback.
    saved = state(out / "checkpoint-4")["stateful_callbacks"]["WandbResumeCallback"]
    assert saved["attributes"]["resume_count"] == 0
