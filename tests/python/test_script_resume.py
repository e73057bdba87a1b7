"""Scripts with their own resume logic: HF's example scripts (run_clm.py of transformers 4.x
and its forks: tests/python/shapes/run_clm_logic.py, a faithful copy of their output-dir
check and get_last_checkpoint) under train-resume, with and without
--overwrite_output_dir. Real transformers Trainer, W&B offline, SIGKILL of the whole
process tree once a checkpoint is complete, the same command again.

- a new run starts (the script's "Output directory ... already exists and is not empty"
  check passes: the lock must not be in the output dir);
- after a kill it resumes (the restored, tagged log_history rows prove from where);
- with the newest checkpoint half-written (its trainer_state.json, which HF writes last,
  missing), it resumes the one before on the FIRST restart: the script's own
  get_last_checkpoint picks the half-written one, and the hook replaces that path by the
  decision's checkpoint, saying so (no failed load, no crash loop).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TRAIN_RESUME

pytest.importorskip("transformers")
from test_launchers import segment, state, stored_run_id, tag_log_history, wandb_run_ids  # noqa: E402
from test_output_dir import assert_resumed, env_for  # noqa: E402

SCRIPT = Path(__file__).with_name("shapes") / "run_clm_logic.py"
MAX_STEPS, SAVE_STEPS = 6, 2


def command(out, overwrite, lock):
    cmd = [TRAIN_RESUME, "-o", out, *([] if lock else ["--no-lock"]), "--", sys.executable]
    cmd += [SCRIPT, "--output_dir", out, "--do_train", "--max_steps", MAX_STEPS]
    cmd += ["--save_steps", SAVE_STEPS, "--logging_steps", 1, "--per_device_train_batch_size", 2]
    cmd += ["--learning_rate", 1e-3, "--report_to", "wandb", "--use_cpu", "--seed", 0]
    cmd += ["--dataloader_num_workers", 0]
    return cmd + (["--overwrite_output_dir"] if overwrite else [])


@pytest.mark.parametrize(
    "overwrite, lock",
    [(True, True), (False, True), (False, False)],
    ids=["overwrite_output_dir", "own-resume", "own-resume-no-lock"],
)
@pytest.mark.parametrize("newest", ["complete", "half-written"])
def test_a_script_with_its_own_resume_logic_starts_then_resumes_the_right_checkpoint(
    overwrite, lock, newest, tmp_path
):
    work = tmp_path / "work dir"
    work.mkdir()
    out = work / "out"
    cmd = command(out, overwrite, lock)
    env = env_for(out)
    first, second = work / "segment-1.log", work / "segment-2.log"
    kill_after = out / ("checkpoint-4" if newest == "half-written" else "checkpoint-2")
    status = segment(cmd, work, env, first, kill_after=kill_after)
    text = first.read_text()
    # A new run started (the lock and the job's state live beside the output dir, not
    # in it: the script's "not empty" check passes), and saved.
    assert status == "killed", text[-4000:]
    assert "is not the dir the decision" not in text

    if newest == "half-written":
        (out / "checkpoint-4" / "trainer_state.json").unlink()  # HF writes it last
    # What the decision takes (a loaded machine may have let the next save begin before
    # the kill: then a half-written newer folder is there too), and what the script's
    # get_last_checkpoint will pass (the highest checkpoint-N folder, complete or not).
    decision = subprocess.run(
        [str(c) for c in [TRAIN_RESUME, "-o", out, "--explain", "--json"]],
        env=env,
        capture_output=True,
        text=True,
    )
    chosen = Path(json.loads(decision.stdout)["checkpoint"])
    pick = max(out.glob("checkpoint-*"), key=lambda p: int(p.name[11:]))
    if newest == "half-written":
        assert chosen == out / "checkpoint-2" and pick != chosen
    run_id = stored_run_id(chosen)
    tag_log_history(chosen)
    status = segment(cmd, work, env, second)
    text = second.read_text()
    assert status == 0, text[-4000:]
    assert_resumed(out / f"checkpoint-{MAX_STEPS}", chosen)
    assert stored_run_id(out / f"checkpoint-{MAX_STEPS}") == run_id
    assert wandb_run_ids(out) == [run_id, run_id]
    assert not (out / ".train-resume" / "failed").exists()
    if overwrite:  # the script passes None: the hook hands the decision's checkpoint
        assert f"▶ handing off: resume from {chosen}, W&B run {run_id}" in text
    elif pick != chosen:  # the script asks for a newer, half-written one itself
        assert (
            f"⚠️ the script's resume_from_checkpoint '{pick}' is newer than the decision's "
            f"{chosen.name}, so the decision passed it over (incomplete, or the trainer "
            f"failed to load it: train-resume -o {out} --explain says why); resuming from "
            f"{chosen} instead"
        ) in text
    else:  # the script asks for the decision's own: nothing to say
        assert "handing off" not in text and "resume_from_checkpoint" not in text
    assert "❌" not in text


def asking_for_checkpoint_2(tmp_path, prepare):
    """A run killed once checkpoint-4 is complete; PREPARE(out) runs; then the same command
    with --resume_from_checkpoint OUT/checkpoint-2. Returns OUT and the second log."""
    work = tmp_path / "work dir"
    work.mkdir()
    out = work / "out"
    cmd = command(out, True, True)
    env = env_for(out)
    first = work / "segment-1.log"
    assert segment(cmd, work, env, first, kill_after=out / "checkpoint-4") == "killed"
    prepare(out)
    log = work / "segment-2.log"
    status = segment([*cmd, "--resume_from_checkpoint", out / "checkpoint-2"], work, env, log)
    text = log.read_text()
    assert status == 0, text[-4000:]
    return out, text


def test_an_older_complete_checkpoint_the_script_asks_for_is_kept(tmp_path):
    """The user's choice: --resume_from_checkpoint OUT/checkpoint-2 while the decision
    takes checkpoint-4; checked complete by the bash library, kept, one line."""
    out, text = asking_for_checkpoint_2(tmp_path, lambda out: tag_log_history(out / "checkpoint-2"))
    own = out / "checkpoint-2"
    assert (
        f"⚠️ the script's resume_from_checkpoint '{own}' differs from the decision "
        f"'{out / 'checkpoint-4'}'; keeping the script's"
    ) in text
    assert_resumed(out / f"checkpoint-{MAX_STEPS}", own)
    assert state(out / f"checkpoint-{MAX_STEPS}")["global_step"] == MAX_STEPS


def record_failed_load_of_checkpoint_2(out):
    failed = out / ".train-resume" / "failed"
    failed.mkdir(parents=True)
    (failed / "checkpoint-2").write_text("RuntimeError: a test record\n")
    tag_log_history(out / "checkpoint-4")


def test_an_older_checkpoint_the_trainer_failed_to_load_is_replaced(tmp_path):
    """--resume_from_checkpoint OUT/checkpoint-2, which has a failed-load record: the bash
    library refuses it (the record's reason), so the decision's checkpoint-4 is used."""
    out, text = asking_for_checkpoint_2(tmp_path, record_failed_load_of_checkpoint_2)
    own, chosen = out / "checkpoint-2", out / "checkpoint-4"
    record = out / ".train-resume" / "failed" / "checkpoint-2"
    assert (
        f"⚠️ the script's resume_from_checkpoint '{own}' cannot be used (the trainer failed "
        f"to load it: RuntimeError: a test record (recorded in {record}; "
        f"--forget-failed clears it)); resuming from {chosen} instead"
    ) in text
    assert_resumed(out / f"checkpoint-{MAX_STEPS}", chosen)
