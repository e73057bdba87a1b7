"""One W&B history across resumes: a real TRL GRPO run (W&B offline) SIGKILLed at
the first step end where its run file on disk holds rows past its newest checkpoint
(examples/demo.py logged_past_checkpoint: the trainer waits at each step end for the
word to go on, so the kill never depends on timing), then resumed through
bin/train-resume. The .wandb files are read with W&B's own protobuf definitions
(train_resume/wandb_records.py)."""

import json
import sys

import pytest
from conftest import ROOT

pytest.importorskip("trl")
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]
from demo import grpo_command, logged_past_checkpoint, run_segment, trainer_env  # noqa: E402

from train_resume import wandb_records  # noqa: E402

MAX_STEPS, SAVE_STEPS = 30, 10


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    out = tmp_path_factory.mktemp("history") / "out"
    out.mkdir()
    cmd, env, log = grpo_command(out, MAX_STEPS, SAVE_STEPS), trainer_env(out), out.parent / "log"
    status = run_segment(cmd, env, log, kill_at=logged_past_checkpoint(out), timeout=300)
    assert status == "killed", (
        f"W&B's file never held rows past a checkpoint before the run ended (exit {status}): "
        f"{log.read_text()[-3000:]}"
    )
    (killed,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    assert run_segment(cmd, env, log, timeout=300) == 0, log.read_text()[-3000:]
    (second,) = set((out / "wandb").glob("offline-run-*/run-*.wandb")) - {killed}
    return out, killed, second, log.read_text()


def global_steps(rows):
    return {row["train/global_step"] for row in rows if "train/global_step" in row}


def train_rows(rows):
    """{global step: _step} of the trainer's own rows (those with a loss)."""
    return {row["train/global_step"]: row["_step"] for row in rows if "train/loss" in row}


def test_the_resumed_segment_logs_no_second_row_for_a_global_step_already_logged(resumed):
    out, killed, second, _ = resumed
    first, again = wandb_records.history(killed), wandb_records.history(second)
    assert first and again
    assert global_steps(first) & global_steps(again) == set()
    # and loses none: every step after the killed segment's last has its row
    assert sorted(train_rows(again)) == list(range(max(global_steps(first)) + 1, MAX_STEPS + 1))


def test_the_run_config_records_the_replayed_range(resumed):
    out, killed, second, log = resumed
    config = wandb_records.config(second)
    at_resume = config["train_resume/global_step_at_resume"]
    logged = max(global_steps(wandb_records.history(killed)))
    assert at_resume % SAVE_STEPS == 0 and logged > at_resume
    assert config["train_resume/replayed_steps"] == [at_resume + 1, logged]
    assert f"↩ global steps {at_resume + 1}-{logged} replay steps the run already holds" in log


def test_the_step_recorded_at_each_save_is_the_runs_own_step_there(resumed):
    out, killed, second, _ = resumed
    first, again = wandb_records.history(killed), wandb_records.history(second)
    before = train_rows(first)
    at_resume = wandb_records.config(second)["train_resume/global_step_at_resume"]
    for step in range(SAVE_STEPS, at_resume + 1, SAVE_STEPS):
        state = json.loads((out / f"checkpoint-{step}" / "trainer_state.json").read_text())
        args = state["stateful_callbacks"]["WandbResumeCallback"]["args"]
        assert args["wandb_step"] == before[step], step
        assert args["wandb_project"] == "huggingface"
    # The resumed segment's rows restart at _step 0 in its file; `wandb sync` appends
    # them after the killed segment's: the recorded step is numbered as synced.
    offset = max(row["_step"] for row in first) + 1
    state = json.loads((out / f"checkpoint-{MAX_STEPS}" / "trainer_state.json").read_text())
    recorded = state["stateful_callbacks"]["WandbResumeCallback"]["args"]["wandb_step"]
    assert recorded == offset + train_rows(again)[MAX_STEPS]
