"""End to end: a real TRL GRPO run killed with SIGKILL and resumed through train-resume.

The same command each time (bin/train-resume -o OUT -- python examples/tiny_grpo.py);
the run is killed (the whole process tree, SIGKILL) at the first step end after a given
checkpoint is complete: the trainer waits there for the word to go on
(examples/demo.py run_segment), so the kill lands there whatever the machine's load.
"""

import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import ROOT, free_port

pytest.importorskip("trl")
sys.path.insert(0, str(ROOT / "examples"))
from demo import (  # noqa: E402
    grpo_command,
    log_history,
    run_segment,
    stored_run_id,
    trainer_env,
    wandb_segments,
)

MAX_STEPS, SAVE_STEPS, KILL_AFTER = 10, 2, 4


def start(out, log, kill_after=None, launcher=None):
    cmd = grpo_command(out, MAX_STEPS, SAVE_STEPS, launcher=launcher)
    kill = out / f"checkpoint-{kill_after}" if kill_after else None
    return run_segment(cmd, trainer_env(out), log, kill_after=kill, timeout=300)


def losses(rows):
    return {row["step"]: row["loss"] for row in rows}


def newest_checkpoint(out):
    return max(out.glob("checkpoint-*"), key=lambda p: int(p.name[11:]))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline") / "out"
    assert start(out, out.parent / "log") == 0, (out.parent / "log").read_text()[-3000:]
    return log_history(out / f"checkpoint-{MAX_STEPS}")


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A run SIGKILLed once checkpoint-KILL_AFTER was complete; not resumed yet."""
    out = tmp_path_factory.mktemp("killed") / "out"
    assert start(out, out.parent / "log", kill_after=KILL_AFTER) == "killed"
    # killed at the step end after checkpoint-KILL_AFTER, before the next save
    assert newest_checkpoint(out).name == f"checkpoint-{KILL_AFTER}"
    return out


def resume_copy(killed, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(killed, out, symlinks=True)
    return out


def resume(out):
    log = out.parent / "resume.log"
    status = start(out, log)
    text = log.read_text()
    assert status == 0, text[-3000:]
    return text


def assert_equivalent(out, baseline, resume_step):
    final = log_history(out / f"checkpoint-{MAX_STEPS}")
    assert final[-1]["step"] == baseline[-1]["step"] == MAX_STEPS
    expected, got = losses(baseline), losses(final)
    after = [step for step in expected if step > resume_step]
    assert after, "no step after the resume to compare"
    for step in after:
        assert got[step] == pytest.approx(expected[step], abs=1e-6), f"step {step}"


def test_a_killed_and_resumed_run_matches_the_uninterrupted_one(killed, baseline, tmp_path):
    out = resume_copy(killed, tmp_path)
    ckpt = newest_checkpoint(out)
    text = resume(out)
    assert f"🔄 resuming from checkpoint: {ckpt}" in text
    assert_equivalent(out, baseline, int(ckpt.name[11:]))


def test_both_segments_write_to_the_same_wandb_run(killed, tmp_path):
    out = resume_copy(killed, tmp_path)
    resumed_from = newest_checkpoint(out)
    resume(out)
    segments = wandb_segments(out)
    assert len(segments) == 2, segments
    assert {run_id for _, run_id in segments} == {stored_run_id(resumed_from)}
    assert stored_run_id(out / f"checkpoint-{MAX_STEPS}") == stored_run_id(resumed_from)


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_half_written_newest_checkpoint_is_passed_over(killed, baseline, tmp_path, damage):
    out = resume_copy(killed, tmp_path)
    newest = newest_checkpoint(out)
    state = newest / "trainer_state.json"
    if damage == "missing":
        state.unlink()
    else:
        state.write_text(state.read_text()[: len(state.read_text()) // 2])
    previous = max(
        (p for p in out.glob("checkpoint-*") if p != newest), key=lambda p: int(p.name[11:])
    )
    text = resume(out)
    assert f"⚠️ skipping {newest}:" in text
    assert f"🔄 resuming from checkpoint: {previous}" in text
    assert_equivalent(out, baseline, int(previous.name[11:]))


def test_two_processes_resume_from_the_same_checkpoint_with_the_same_run(tmp_path):
    def torchrun():
        launcher = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", "2"]
        return [*launcher, "--master_port", str(free_port())]

    out = tmp_path / "out"
    log = tmp_path / "log"
    status = start(out, log, kill_after=KILL_AFTER, launcher=torchrun())
    assert status == "killed", log.read_text()[-3000:]
    resumed_from = newest_checkpoint(out)
    status = start(out, tmp_path / "resume.log", launcher=torchrun())
    text = (tmp_path / "resume.log").read_text()
    assert status == 0, text[-3000:]
    run_id = stored_run_id(resumed_from)
    for rank in (0, 1):
        line = f"▶ handing off (rank {rank}): resume from {resumed_from}, W&B run {run_id}"
        assert line in text
    segments = wandb_segments(out)
    assert len(segments) == 2, segments
    assert {rid for _, rid in segments} == {run_id}
    state = json.loads((out / f"checkpoint-{MAX_STEPS}" / "trainer_state.json").read_text())
    assert state["global_step"] == MAX_STEPS
