"""The decision is checked where it is applied: the Trainer's real output dir, in every rank.

Each test runs a real transformers Trainer (tests/python/shapes/, W&B offline) through
bin/train-resume, SIGKILLs the whole process tree once a checkpoint is complete, tags the
rows of the checkpoint's log_history, and starts the same command again: the restored
(tagged) rows in the final checkpoint prove where the second segment resumed from.

- `-o` relative to another cwd than the trainer's, and `-o` mistyped (also under torchrun
  with 2 ranks): the Trainer whose output dir holds the checkpoints resumes them, with the
  W&B run stored in them;
- a Trainer on a dir without checkpoints while the job resumes another dir: a new run for
  its dir, a new W&B run (not the resumed one), one warning line naming both dirs;
- a two-stage script (stage 1 on OUT/stage1, then the main Trainer on OUT): stage 1 is
  not handed the main checkpoint; the main Trainer resumes;
- 2 ranks, one of which cannot see the chosen checkpoint (a mount namespace hides it):
  the same error on every rank before training, no hang, nothing trained.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TRAIN_RESUME, clean_env

pytest.importorskip("transformers")
from test_launchers import (  # noqa: E402
    BIN,
    TAG,
    free_port,
    segment,
    state,
    stored_run_id,
    tag_log_history,
    wandb_run_ids,
)

SHAPES = Path(__file__).with_name("shapes")
MAX_STEPS, SAVE_STEPS = 6, 2


def env_for(wandb_dir, **extra):
    extra.setdefault("PYTHON", sys.executable)
    env = clean_env(WANDB_DIR=wandb_dir, **extra)
    env.update(TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return env


def loss_rows(checkpoint):
    return [row for row in state(checkpoint)["log_history"] if "loss" in row]


def assert_resumed(final, chosen):
    """FINAL's log_history holds steps 1..N once, the tagged rows of CHOSEN first."""
    rows = loss_rows(final)
    at = state(chosen)["global_step"]
    assert [row["step"] for row in rows] == list(range(1, state(final)["global_step"] + 1))
    assert [row.get(TAG) for row in rows] == [chosen.name] * at + [None] * (len(rows) - at)


def decision_checkpoint(out, env):
    """The checkpoint the decision for OUT takes now: the newest complete one (on a loaded
    machine the kill may come after the next save began, or even ended)."""
    done = subprocess.run(
        [str(TRAIN_RESUME), "-o", str(out), "--explain", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return Path(json.loads(done.stdout)["checkpoint"])


def trainer_command(launcher, *args):
    if launcher == "torchrun":
        run = [BIN / "torchrun", "--nproc_per_node", "2", "--master_port", free_port()]
        return [*run, *args]
    return [sys.executable, *args]


@pytest.mark.parametrize("case", ["relative-from-another-cwd", "mistyped", "mistyped-torchrun"])
def test_the_trainer_whose_output_dir_holds_the_checkpoints_resumes_them(case, tmp_path):
    work = tmp_path / "work dir"
    (work / "sub").mkdir(parents=True)
    out = work / "sub" / "out"  # where the Trainer writes
    steps = ["--max_steps", MAX_STEPS, "--save_steps", SAVE_STEPS]
    launcher = "torchrun" if case.endswith("torchrun") else "python"
    trainer = trainer_command(launcher, SHAPES / "causal_lm.py", "--output_dir", "out", *steps)
    if case == "relative-from-another-cwd":
        # The job runs train-resume from work/ with -o out (work/out), and a wrapper cd's
        # into sub/ before the trainer: its output_dir "out" is work/sub/out.
        decided = work / "out"
        cmd = [TRAIN_RESUME, "-o", "out", "--", "bash", "-c", 'cd sub && exec "$@"', "-"]
        cmd += trainer
    else:
        decided = work / "sub" / "outt"
        cmd = [TRAIN_RESUME, "-o", "sub/outt", "--", "bash", "-c", 'cd sub && exec "$@"', "-"]
        cmd += trainer
    env = env_for(out)
    first, second = work / "segment-1.log", work / "segment-2.log"
    assert segment(cmd, work, env, first, kill_after=out / "checkpoint-2") == "killed"
    text = first.read_text()
    # No checkpoint anywhere yet: a new run for the Trainer's dir, one line naming both.
    lines = [line for line in text.splitlines() if "is not the dir the decision" in line]
    assert len(lines) == 1, text[-3000:]  # said once (rank 0 decides for every rank)
    assert f"output_dir {out} is not the dir the decision was made for ({decided})" in lines[0]
    assert f"holds no checkpoint: a new run for {out}" in lines[0]

    chosen = decision_checkpoint(out, env)
    run_id = stored_run_id(chosen)
    tag_log_history(chosen)
    status = segment(cmd, work, env, second)
    text = second.read_text()
    assert status == 0, text[-4000:]
    assert (
        f"⚠️ this Trainer's output_dir {out} is not the dir the decision was made for "
        f"({decided}): decided for {out}"
    ) in text
    assert f"🔄 resuming from checkpoint: {chosen}" in text  # the bash library's own log
    if launcher == "torchrun":
        for rank in (0, 1):
            assert f"▶ handing off (rank {rank}): resume from {chosen}, W&B run {run_id}" in text
    else:
        assert f"▶ handing off: resume from {chosen}, W&B run {run_id}, WANDB_RESUME=must" in text
    assert_resumed(out / f"checkpoint-{MAX_STEPS}", chosen)
    assert stored_run_id(out / f"checkpoint-{MAX_STEPS}") == run_id
    assert wandb_run_ids(out) == [run_id, run_id]
    assert not list(decided.glob("checkpoint-*"))
    assert "❌" not in text


@pytest.fixture(scope="module")
def resumable(tmp_path_factory):
    """A finished run of 4 steps (checkpoint-2, checkpoint-4, its W&B run) made through
    train-resume."""
    work = tmp_path_factory.mktemp("resumable")
    out = work / "out"
    cmd = [TRAIN_RESUME, "-o", out, "--", sys.executable, SHAPES / "causal_lm.py"]
    cmd += ["--output_dir", out, "--max_steps", 4]
    done = subprocess.run(
        [str(c) for c in cmd], cwd=work, env=env_for(out), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_a_trainer_on_a_dir_without_checkpoints_is_a_new_run_and_a_new_wandb_run(
    resumable, tmp_path
):
    """The job resumes OUT (W&B run X); a Trainer on another, empty dir is not handed
    OUT's checkpoint and does not log into X."""
    out = tmp_path / "out"
    shutil.copytree(resumable, out)
    other = tmp_path / "other"
    run_id = stored_run_id(out / "checkpoint-4")
    cmd = [TRAIN_RESUME, "-o", out, "--", sys.executable, SHAPES / "causal_lm.py"]
    cmd += ["--output_dir", other, "--max_steps", 2]
    done = subprocess.run(
        [str(c) for c in cmd], cwd=tmp_path, env=env_for(other), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if "is not the dir the decision" in line]
    assert lines == [
        f"train-resume: ⚠️ this Trainer's output_dir {other} is not the dir the decision was "
        f"made for ({out}), and holds no checkpoint: a new run for {other} (W&B: a new run, "
        f"not the one of {out})"
    ]
    assert "handing off" not in done.stderr
    assert [row["step"] for row in loss_rows(other / "checkpoint-2")] == [1, 2]
    new_ids = wandb_run_ids(other)
    assert len(new_ids) == 1 and new_ids[0] != run_id
    assert stored_run_id(other / "checkpoint-2") == new_ids[0]


def test_a_two_stage_script_resumes_the_main_trainer_not_stage_1(tmp_path):
    work = tmp_path / "work dir"
    work.mkdir()
    out = work / "out"
    cmd = [TRAIN_RESUME, "-o", out, "--", sys.executable, SHAPES / "two_stage.py"]
    cmd += ["--output_dir", out, "--max_steps", MAX_STEPS, "--save_steps", SAVE_STEPS]
    env = env_for(out)
    first, second = work / "segment-1.log", work / "segment-2.log"
    assert segment(cmd, work, env, first, kill_after=out / "checkpoint-2") == "killed"
    stage1 = out / "stage1"
    assert state(stage1 / "checkpoint-2")["global_step"] == 2
    chosen = decision_checkpoint(out, env)
    main_id, stage1_id = stored_run_id(chosen), stored_run_id(stage1 / "checkpoint-2")
    assert main_id != stage1_id  # each dir's own W&B run, from the first segment on
    tag_log_history(chosen)

    status = segment(cmd, work, env, second)
    text = second.read_text()
    assert status == 0, text[-4000:]
    # Stage 1 was not handed the main checkpoint: its dir was decided for on its own.
    assert f"resume from {chosen}" in text
    assert f"output_dir {stage1} is not the dir the decision was made for ({out})" in text
    for checkpoint in stage1.glob("checkpoint-*"):
        assert state(checkpoint)["global_step"] <= 3
        assert not any(TAG in row for row in state(checkpoint)["log_history"])
        assert stored_run_id(checkpoint) == stage1_id
    # The main Trainer resumed from its checkpoint, in its own W&B run.
    assert_resumed(out / f"checkpoint-{MAX_STEPS}", chosen)
    assert stored_run_id(out / f"checkpoint-{MAX_STEPS}") == main_id
    assert "❌" not in text


def test_a_rank_that_cannot_see_the_checkpoint_stops_every_rank_before_training(
    resumable, tmp_path
):
    """Rank 1 runs in a mount namespace where checkpoint-4 is an empty tmpfs (as a node
    whose file system does not have it): every rank stops with the same error."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) to hide the checkpoint from one rank")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -m is not allowed here: {probe.stderr.decode()[-200:]}")
    out = tmp_path / "out"
    shutil.copytree(resumable, out)
    chosen = out / "checkpoint-4"
    worker = tmp_path / "worker.sh"
    worker.write_text(
        "#!/bin/bash\n"
        '[[ $LOCAL_RANK == 1 ]] || exec "$@"\n'
        'exec unshare -m bash -c \'mount -t tmpfs none "$0" && exec "$@"\' "$HIDE" "$@"\n'
    )
    worker.chmod(0o755)
    launcher = [BIN / "torchrun", "--nproc_per_node", "2", "--master_port", free_port()]
    cmd = [TRAIN_RESUME, "-o", out, "--", *launcher, "--no-python", worker, sys.executable]
    cmd += [SHAPES / "causal_lm.py", "--output_dir", out, "--max_steps", 6]
    log = tmp_path / "log"
    status = segment(cmd, tmp_path, env_for(out, HIDE=chosen), log, timeout=300)
    text = log.read_text()
    assert status != 0, text[-3000:]
    for rank in (0, 1):  # the same error, said by each rank
        assert re.search(
            rf"train-resume: ❌ not every rank can read {re.escape(str(chosen))} \(rank 1 on "
            r"[^:]+: cannot read its trainer_state.json\): every rank must resume the same "
            rf"checkpoint .*Stopped on every rank before training \(rank {rank}\)\n",
            text,
        ), text[-4000:]
    assert "DecisionError" in text
    assert "handing off" not in text
    assert not (out / "checkpoint-6").exists()
    assert json.loads((chosen / "trainer_state.json").read_text())["global_step"] == 4
    assert [p.name for p in sorted(out.glob("checkpoint-*"))] == ["checkpoint-2", "checkpoint-4"]
