"""WandbResumeCallback with a real tiny transformers.Trainer and real offline W&B."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TRAIN_RESUME, clean_env, run, shim

pytest.importorskip("transformers")
pytest.importorskip("wandb")

TINY = Path(__file__).with_name("tiny_trainer.py")
sys.path.insert(0, str(ROOT))
from train_resume import wandb_records  # noqa: E402


def last_json(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def only(paths):
    """The one path of PATHS (the first run's W&B folder holds one segment)."""
    (path,) = paths
    return path


def stored(checkpoint):
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return state["stateful_callbacks"].get("WandbResumeCallback")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """4 steps through the shim, W&B run folders kept apart from the output dir."""
    work = tmp_path_factory.mktemp("first run")
    out, wandb_dir = work / "out", work / "wb"
    wandb_dir.mkdir()
    info = last_json(shim([TINY, out, 4], work, WANDB_DIR=wandb_dir))
    return work, out, wandb_dir, info


def test_every_checkpoint_carries_the_live_run_id(first_run):
    work, out, wandb_dir, info = first_run
    assert "WandbResumeCallback" in info["callbacks"]
    assert info["run_id"]
    (folder,) = (wandb_dir / "wandb").glob("offline-run-*")
    assert (folder / f"run-{info['run_id']}.wandb").is_file()
    for step in (2, 4):
        saved = stored(out / f"checkpoint-{step}")
        assert saved["args"]["wandb_run_id"] == info["run_id"]
        assert saved["attributes"]["resume_count"] == 0
    assert info["config"] == {"train_resume/resumed": False, "train_resume/run_id": info["run_id"]}
    assert "resumed" not in info["tags"]


def stat_line(path):
    """What `stat -c '%s %i %.9Y %.9Z'` (the bash decision's view) prints for PATH."""
    result = subprocess.run(
        ["stat", "-L", "-c", "%s %i %.9Y %.9Z", "--", path], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def record_lines(out, step):
    return (out / ".train-resume" / "saved" / f"checkpoint-{step}").read_text().splitlines()


def test_every_save_is_recorded_by_the_librarys_check_as_the_decision_sees_it(first_run):
    """The bash library checked each save and wrote its record (format 2): the state's
    identity, its step and run id, the identity of every file of the checkpoint."""
    work, out, _, info = first_run
    for step in (2, 4):
        ckpt = out / f"checkpoint-{step}"
        lines = record_lines(out, step)
        assert lines[:3] == [
            "train-resume-save-record 2",
            f"state {stat_line(ckpt / 'trainer_state.json').strip()}",
            "checked complete",
        ]
        assert f"global_step {step}" in lines and lines[-1] == "end"
        ids = [line.split("\t") for line in lines if line.startswith("id ")]
        assert ids[0][:3] == [
            "id stateful_callbacks.WandbResumeCallback.args.wandb_run_id",
            "string",
            info["run_id"],
        ]
        entries = {line.rsplit(" ", 1)[1]: line for line in lines if line.startswith("entry ")}
        assert sorted(entries) == sorted(p.name for p in ckpt.iterdir())
        assert entries["model.safetensors"] == (
            f"entry {stat_line(ckpt / 'model.safetensors').strip()} model.safetensors"
        )
    assert not list(out.glob("checkpoint-*/.train-resume"))  # nothing of ours inside


def end_record(out):
    """OUT/.train-resume/ended as NAME -> VALUE."""
    lines = (out / ".train-resume" / "ended").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_a_run_that_reached_max_steps_records_so_at_train_end(first_run):
    _, out, _, _ = first_run
    record = end_record(out)
    assert record.pop("time").isdigit()
    assert record == {"reason": "max_steps", "step": "4", "max_steps": "4", "job": ""}


def test_a_run_of_epochs_records_that_it_ran_its_epochs(tmp_path):
    """max_steps -1: num_train_epochs (3) of 4 steps each."""
    out = tmp_path / "out"
    result = shim([TINY, out, -1], tmp_path, WANDB_MODE="disabled")
    assert result.returncode == 0, result.stderr[-3000:]
    record = end_record(out)
    assert (record["reason"], record["step"], record["max_steps"]) == ("epochs", "12", "12")


def test_the_end_is_not_recorded_in_an_output_dir_the_trainer_left_absent_or_empty(tmp_path):
    """A run that saved nothing leaves its output dir as it found it."""
    from train_resume.callback import MAX_STEPS, record_end

    record_end(str(tmp_path / "absent"), MAX_STEPS, step=1, max_steps=1)
    assert not (tmp_path / "absent").exists()
    (tmp_path / "empty").mkdir()
    record_end(str(tmp_path / "empty"), MAX_STEPS, step=1, max_steps=1)
    assert list((tmp_path / "empty").iterdir()) == []


def test_a_process_killed_while_the_library_checks_its_save_has_committed_it(tmp_path):
    """The record of the state's identity is written before the library runs: killed
    meanwhile (a `bash` on PATH that never returns stands for the library at work), the
    save is committed all the same."""
    from examples.demo import kill_tree

    ckpt = tmp_path / "out" / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text('{"global_step": 2}')
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bash").write_text(f'#!/bin/sh\ntouch "{tmp_path}/checking"\nexec sleep 600\n')
    (fake / "bash").chmod(0o755)
    env = clean_env(PATH=f"{fake}{os.pathsep}{os.environ['PATH']}")
    code = "import sys; from train_resume.callback import record_save; record_save(sys.argv[1])"
    proc = subprocess.Popen([sys.executable, "-c", code, str(ckpt)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "checking").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        kill_tree(proc)
    record = tmp_path / "out" / ".train-resume" / "saved" / "checkpoint-2"
    assert record.read_text() == stat_line(ckpt / "trainer_state.json")


def test_without_the_bash_library_the_record_holds_the_states_identity(tmp_path, monkeypatch):
    """Where the library cannot be run, the record is the format before (the state's
    identity alone), which the decision still reads: a commit marker all the same."""
    from train_resume import hook
    from train_resume.callback import record_save

    monkeypatch.setitem(hook._found, "lib", None)
    ckpt = tmp_path / "checkpoint-2"
    ckpt.mkdir()
    (ckpt / "trainer_state.json").write_text('{"global_step": 2}')
    record_save(str(ckpt))
    record = tmp_path / ".train-resume" / "saved" / "checkpoint-2"
    assert record.read_text() == stat_line(ckpt / "trainer_state.json")


@pytest.mark.parametrize(
    ("fake_bash", "said"),
    [
        ("#!/bin/sh\nexit 3\n", "the library's record_save exited 3"),
        (None, "cannot run bash with "),
    ],
    ids=["library-fails", "no-bash"],
)
def test_when_the_library_fails_or_bash_cannot_run_the_record_holds_the_states_identity(
    tmp_path, fake_bash, said
):
    """The library's record_save exiting non-zero, or no bash to run it: the format-1
    record stays (the save is committed all the same) and the warning says which."""
    ckpt = tmp_path / "out" / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text('{"global_step": 2}')
    fake = tmp_path / "bin"
    fake.mkdir()
    if fake_bash is not None:
        (fake / "bash").write_text(fake_bash)
        (fake / "bash").chmod(0o755)
    code = "import sys; from train_resume.callback import record_save; record_save(sys.argv[1])"
    done = subprocess.run(
        [sys.executable, "-c", code, str(ckpt)],
        env=clean_env(PATH=str(fake)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert said in done.stderr
    assert "the save record of" in done.stderr and "identity only" in done.stderr
    record = tmp_path / "out" / ".train-resume" / "saved" / "checkpoint-2"
    assert record.read_text() == stat_line(ckpt / "trainer_state.json")


def test_save_records_of_checkpoints_that_are_gone_are_removed(tmp_path):
    from train_resume.callback import _record_saves

    for step in (2, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    _record_saves(str(tmp_path), 2)
    shutil.rmtree(tmp_path / "checkpoint-2")  # rotated away (save_total_limit)
    _record_saves(str(tmp_path), 4)
    saved = tmp_path / ".train-resume" / "saved"
    assert sorted(p.name for p in saved.iterdir()) == ["checkpoint-4"]
    _record_saves(str(tmp_path), 6)  # not saved there (a search's run dir): nothing, no error
    assert sorted(p.name for p in saved.iterdir()) == ["checkpoint-4"]


def train_rows(data):
    """{global step: _step} of the trainer's own rows (those with train/loss) in a
    .wandb file, read with W&B's protobuf definitions."""
    return {
        row["train/global_step"]: row["_step"]
        for row in wandb_records.history(data)
        if "train/loss" in row
    }


def test_every_checkpoint_records_the_runs_step_at_the_save(first_run):
    work, out, wandb_dir, info = first_run
    (data,) = (wandb_dir / "wandb").glob("offline-run-*/run-*.wandb")
    rows = train_rows(data)
    assert sorted(rows) == [1, 2, 3, 4]
    for step in (2, 4):
        args = stored(out / f"checkpoint-{step}")["args"]
        assert args["wandb_step"] == rows[step]
        assert args["wandb_project"] == wandb_records.run_record(data).project
        assert "wandb_entity" in args


def test_train_resume_reads_the_stored_id_when_no_wandb_folder_is_kept(first_run):
    work, out, _, info = first_run
    result = run([TRAIN_RESUME, "-o", out, "--explain", "--json"], work)
    decision = json.loads(result.stdout)
    assert decision["run_id"] == info["run_id"]
    assert decision["run_id_source"] == "trainer-state"
    assert decision["checkpoint"] == str(out / "checkpoint-4")


def test_a_resume_is_recorded_in_the_run_config_and_tags(first_run, tmp_path):
    work, out, wandb_dir, info = first_run
    copy = tmp_path / "out"
    shutil.copytree(out / "checkpoint-2", copy / "checkpoint-2")
    checkpoint = copy / "checkpoint-2"
    # A copy of the first run's W&B folders: the module's fixture keeps one segment.
    wb = tmp_path / "wb"
    shutil.copytree(wandb_dir, wb, symlinks=True)
    resumed = last_json(
        shim(
            [TINY, copy, 4],
            tmp_path,
            WANDB_DIR=wb,
            WANDB_RUN_ID=info["run_id"],
            WANDB_RESUME="must",
            TRAIN_RESUME_CHECKPOINT=checkpoint,
            TRAIN_RESUME_RUN_ID_SOURCE="wandb-dir",
            SLURM_JOB_ID=42,
            SLURM_RESTART_COUNT=1,
        )
    )
    assert resumed["run_id"] == info["run_id"]
    assert resumed["config"] == {
        "train_resume/resumed": True,
        "train_resume/run_id": info["run_id"],
        "train_resume/checkpoint": str(checkpoint),
        "train_resume/global_step_at_resume": 2,
        "train_resume/resume_count": 1,
        "train_resume/run_id_source": "wandb-dir",
        "train_resume/slurm_job_id": "42",
        "train_resume/slurm_restart_count": "1",
        "train_resume/replayed_steps": [3, 4],
    }
    assert "resumed" in resumed["tags"]
    saved = stored(copy / "checkpoint-4")
    assert saved["args"]["wandb_run_id"] == info["run_id"]
    assert saved["attributes"]["resume_count"] == 1


def resume_from_2(first_run, tmp_path, resume="must", **env):
    """Resume a copy of checkpoint-2 in the first run's W&B folder: steps 3-4 replay
    steps the first segment logged. Returns (result, the new segment's history)."""
    work, out, wandb_dir, info = first_run
    copy = tmp_path / "out"
    shutil.copytree(out / "checkpoint-2", copy / "checkpoint-2")
    (wb := tmp_path / "wb").mkdir()
    shutil.copytree(wandb_dir / "wandb", wb / "wandb", symlinks=True)
    before = set((wb / "wandb").glob("offline-run-*"))
    if resume:
        env["WANDB_RESUME"] = resume
    result = shim(
        [TINY, copy, 4],
        tmp_path,
        WANDB_DIR=wb,
        WANDB_RUN_ID=info["run_id"],
        TRAIN_RESUME_CHECKPOINT=copy / "checkpoint-2",
        **env,
    )
    (new,) = set((wb / "wandb").glob("offline-run-*")) - before
    (data,) = new.glob("run-*.wandb")
    return result, data, copy


def test_replayed_steps_are_not_logged_twice(first_run, tmp_path):
    result, data, copy = resume_from_2(first_run, tmp_path)
    assert last_json(result)["config"]["train_resume/replayed_steps"] == [3, 4]
    assert "↩ global steps 3-4 replay steps the run already holds" in result.stderr
    assert {row.get("train/global_step") for row in wandb_records.history(data)} <= {None}
    # Nothing was logged in this segment: its step at the save is the earlier one's last.
    earlier = only((first_run[2] / "wandb").glob("offline-run-*/run-*.wandb"))
    last = max(row["_step"] for row in wandb_records.history(earlier))
    assert stored(copy / "checkpoint-4")["args"]["wandb_step"] == last


def test_replayed_steps_are_logged_again_when_asked(first_run, tmp_path):
    result, data, copy = resume_from_2(first_run, tmp_path, TRAIN_RESUME_REPLAYED="log")
    assert last_json(result)["config"]["train_resume/replayed_steps"] == [3, 4]
    assert "logged again (TRAIN_RESUME_REPLAYED=log)" in result.stderr
    assert sorted(train_rows(data)) == [3, 4]


def test_a_rewind_keeps_every_replayed_row(first_run, tmp_path):
    rows = train_rows(only((first_run[2] / "wandb").glob("offline-run-*/run-*.wandb")))
    at_save = stored(first_run[1] / "checkpoint-2")["args"]["wandb_step"]
    rewind = f"{first_run[3]['run_id']}?_step={at_save}"
    result, data, copy = resume_from_2(first_run, tmp_path, resume=None, WANDB_RESUME_FROM=rewind)
    config = last_json(result)["config"]
    assert config["train_resume/rewound_to"] == rewind
    assert "train_resume/replayed_steps" not in config
    resumed = train_rows(data)
    assert sorted(resumed) == [3, 4]
    # W&B numbers the rewound segment's rows after the _step rewound to; so does the
    # step recorded at the save.
    assert resumed[3] == rows[3] == at_save + 1
    assert stored(copy / "checkpoint-4")["args"]["wandb_step"] == resumed[4]


def test_without_the_earlier_segments_replayed_steps_are_logged(first_run, tmp_path):
    work, out, wandb_dir, info = first_run
    copy = tmp_path / "out"
    shutil.copytree(out / "checkpoint-2", copy / "checkpoint-2")
    result = shim(
        [TINY, copy, 4],
        tmp_path,
        WANDB_DIR=tmp_path,
        WANDB_RUN_ID=info["run_id"],
        WANDB_RESUME="must",
        TRAIN_RESUME_CHECKPOINT=copy / "checkpoint-2",
    )
    assert "train_resume/replayed_steps" not in last_json(result)["config"]
    (data,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    assert sorted(train_rows(data)) == [3, 4]


def test_a_checkpoint_made_without_the_callback_resumes_with_it(tmp_path):
    out = tmp_path / "out"
    last_json(run([sys.executable, TINY, out, 2], tmp_path, WANDB_MODE="disabled"))
    assert stored(out / "checkpoint-2") is None
    info = last_json(
        shim(
            [TINY, out, 4],
            tmp_path,
            WANDB_MODE="disabled",
            TRAIN_RESUME_CHECKPOINT=out / "checkpoint-2",
        )
    )
    assert "WandbResumeCallback" in info["callbacks"]
    assert stored(out / "checkpoint-4")["attributes"]["resume_count"] == 1


@pytest.mark.parametrize(
    "env", [{"WANDB_MODE": "disabled"}, {"TINY_REPORT_TO": "none"}], ids=["disabled", "no-report"]
)
def test_does_nothing_quietly_when_wandb_is_off(tmp_path, env):
    out = tmp_path / "out"
    result = shim([TINY, out, 2], tmp_path, **env)
    info = last_json(result)
    assert info["config"] == {}
    assert "train-resume:" not in result.stderr
    assert stored(out / "checkpoint-2")["args"]["wandb_run_id"] is None


def test_is_not_added_twice_when_the_trainer_already_has_it(tmp_path):
    info = last_json(
        shim([TINY, tmp_path / "out", 2], tmp_path, WANDB_MODE="disabled", TINY_EXPLICIT_CALLBACK=1)
    )
    assert info["callbacks"].count("WandbResumeCallback") == 1


def test_no_callback_leaves_the_trainer_as_it_is(tmp_path):
    info = last_json(
        shim(["--no-callback", TINY, tmp_path / "out", 2], tmp_path, WANDB_MODE="disabled")
    )
    assert "WandbResumeCallback" not in info["callbacks"]


def test_warns_loudly_when_the_live_run_is_not_the_chosen_one(tmp_path):
    result = shim(
        [TINY, tmp_path / "out", 2],
        tmp_path,
        WANDB_DIR=tmp_path,
        WANDB_RUN_ID="chosen-id",
        TINY_PREINIT_ID="other-id",
    )
    assert last_json(result)["run_id"] == "other-id"
    assert (
        "❌ the live W&B run is other-id, but WANDB_RUN_ID is chosen-id: "
        "this run does NOT continue the one train-resume chose" in result.stderr
    )


def test_sigusr1_saves_a_checkpoint_at_the_end_of_the_step_and_exits_138(tmp_path):
    import signal
    import subprocess
    import time

    from conftest import clean_env

    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "train_resume", str(TINY), str(out), "400"],
        cwd=tmp_path,
        env=clean_env(WANDB_MODE="disabled"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out / "checkpoint-2" / "trainer_state.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint-2"
        time.sleep(0.05)
    proc.send_signal(signal.SIGUSR1)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 138, stderr[-3000:]
    saved = [int(p.name[11:]) for p in out.glob("checkpoint-*")]
    step = max(saved)
    assert 2 <= step < 400
    assert f"⏸ SIGUSR1: saving checkpoint-{step} and stopping" in stderr
    state = json.loads((out / f"checkpoint-{step}" / "trainer_state.json").read_text())
    assert state["global_step"] == step
    record = end_record(out)
    assert (record["reason"], record["signal"], record["step"]) == ("signal", "USR1", str(step))
    assert record["max_steps"] == "400"
