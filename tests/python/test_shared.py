"""What the Python side writes is what the bash library reads: the names both use come
from one definition (lib/wandb_resume/shared.env, read by train_resume.layout), and
each record the Python side writes is read back here by the bash code that decides
with it. The order of a run's offline segments is decided by Python alone
(wandb_records.run_segments / segment_key): sync.bash plans in that order."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TRAIN_RESUME, clean_env

sys.path.insert(0, str(ROOT))
from train_resume import callback, hook, layout  # noqa: E402

LIB = ROOT / "lib" / "wandb_resume.sh"
FIXTURES = ROOT / "tests" / "fixtures"


def bash(script, *args):
    """Run SCRIPT with the library sourced; its stdout, lines."""
    done = subprocess.run(
        ["bash", "-c", f'source "$1" && shift && {script}', "test", LIB, *map(str, args)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_names_come_from_the_shared_definitions_beside_the_library():
    assert layout.find(layout.SHARED) == str(ROOT / "lib" / "wandb_resume" / "shared.env")
    defs = layout.parse((ROOT / "lib" / "wandb_resume" / "shared.env").read_text())
    assert layout.saved_dir("/o") == os.path.join("/o", defs["STATE_DIR"], defs["SAVED_DIR"])
    assert layout.failed_dir("/o") == os.path.join("/o", defs["STATE_DIR"], defs["FAILED_DIR"])
    assert layout.ended_file("/o") == os.path.join("/o", defs["STATE_DIR"], defs["ENDED_FILE"])
    assert layout.job_file("/j", "PROCS_DIR") == os.path.join("/j", defs["PROCS_DIR"])
    assert callback.DEFAULT_STOP_SIGNALS == defs["STOP_SIGNALS"]
    stopped, *finished = layout.end_reasons()
    assert (stopped, ",".join(finished)) == (defs["ENDED_STOPPED"], defs["ENDED_FINISHED"])


@pytest.mark.parametrize(
    "reason, finished",
    [
        (callback.SIGNAL, False),
        (callback.MAX_STEPS, True),
        (callback.EPOCHS, True),
        (callback.SHOULD_TRAINING_STOP, True),
    ],
)
def test_every_end_the_callback_records_is_one_the_bash_reader_understands(
    tmp_path, reason, finished
):
    """wandb_resume::_read_ended (supervise's and the decision's one reader) takes each
    reason the callback writes, as a finished run's or a stopped one's."""
    (tmp_path / "checkpoint-3").mkdir()
    callback.record_end(str(tmp_path), reason, signal="USR1", step=3, max_steps=3)
    got = bash(
        'wandb_resume::_read_ended "$1" && printf "%s\\n" "$ended_reason" "$ended_signal" '
        '"$ended_step" "$ended_max" "$ended_why"',
        tmp_path,
    )
    assert got[:4] == [layout.end_reasons()[reason], "USR1", "3", "3"]
    assert bool(got[4]) == finished  # the log line's text: a finished run's only


def test_a_save_record_the_callback_writes_is_the_one_the_decision_reads(tmp_path, monkeypatch):
    """Of two checkpoints, the newer one without a save record (its save did not finish
    on every rank) is passed over once the older one's save is recorded by the callback
    alone (the format-1 record: the bash library not run)."""
    out = tmp_path / "out"
    shutil.copytree(FIXTURES / "trl-run", out, ignore=shutil.ignore_patterns("wandb"))
    assert decided(out) == out / "checkpoint-4"
    monkeypatch.setitem(hook._found, "lib", None)
    callback.record_save(str(out / "checkpoint-2"))
    assert decided(out) == out / "checkpoint-2"


def test_a_failed_load_the_hook_records_is_the_one_the_decision_reads(tmp_path):
    out = tmp_path / "out"
    shutil.copytree(FIXTURES / "trl-run", out, ignore=shutil.ignore_patterns("wandb"))
    hook._record_failed_load(str(out / "checkpoint-4"), ValueError("damaged"))
    assert decided(out) == out / "checkpoint-2"


def decided(out):
    """The checkpoint the decision resumes from, for OUT."""
    done = subprocess.run(
        [TRAIN_RESUME, "-q", "-o", out, "--explain", "--json"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return Path(json.loads(done.stdout)["checkpoint"])


def test_the_stop_signals_the_callback_watches_by_default_are_the_shared_ones(monkeypatch):
    pytest.importorskip("transformers")
    from train_resume import resume_callback

    monkeypatch.delenv("TRAIN_RESUME_STOP_SIGNALS", raising=False)
    names = layout.name("STOP_SIGNALS").split(",")
    assert resume_callback._stop_signals() == [getattr(signal, f"SIG{n}") for n in names]


def test_the_callback_calls_a_run_at_max_steps_exactly_when_the_bash_rule_does():
    """The finished rule has one definition, wandb_resume::_at_max_steps (max_steps > 0
    and global_step >= max_steps): the end reason the callback records (max_steps, or
    should_training_stop short of it) agrees with it for every pair, 0 and equal ones
    included."""
    pytest.importorskip("transformers")
    from types import SimpleNamespace

    from train_resume import resume_callback

    pairs = [(0, 0), (3, 0), (0, 4), (3, 4), (4, 4), (5, 4), (1, 1), (12, 400)]
    script = (
        'for p in "$@"; do wandb_resume::_at_max_steps ${p% *} ${p#* } && echo 1 || echo 0; done'
    )
    at_end = bash(script, *(f"{step} {max_steps}" for step, max_steps in pairs))
    for (step, max_steps), bash_says in zip(pairs, at_end, strict=True):
        reason = resume_callback._how_it_ended(
            SimpleNamespace(max_steps=max(max_steps, 1)),
            SimpleNamespace(global_step=step, max_steps=max_steps),
            SimpleNamespace(should_training_stop=True),
        )
        assert (reason == callback.MAX_STEPS) == (bash_says == "1"), (step, max_steps)


def test_sync_plans_a_runs_segments_in_the_order_python_decides(tmp_path):
    """wandb_records.run_segments (the callback's replay check) and the sync plan
    (lib/wandb_resume/sync.bash, from `python -m train_resume.wandb_records`) take a
    run's segments in one order: start time, not folder name."""
    pytest.importorskip("wandb")
    from train_resume import wandb_records

    wandb_dir = tmp_path / "wandb"
    shutil.copytree(FIXTURES / "sync" / "wandb", wandb_dir)
    env = clean_env(TRAIN_RESUME_PYTHON=sys.executable, TRAIN_RESUME_WANDB="wandb")
    done = subprocess.run(
        [TRAIN_RESUME, "sync", tmp_path, "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    planned = {}
    for line in done.stdout.splitlines():
        if line.startswith("call "):
            for folder in shlex.split(line.partition(": ")[2])[2:]:
                run_id = os.path.basename(folder).split("-", 3)[3]
                planned.setdefault(run_id, []).append(folder)
    assert set(planned) == {"three-seg", "killed"}
    for run_id, folders in planned.items():
        ordered = wandb_records.run_segments(wandb_dir, run_id)
        assert folders == [str(folder) for folder, _run, _recs in ordered]
    names = [os.path.basename(f) for f in planned["three-seg"]]
    assert names != sorted(names)  # the fixture's start times are not in name order


def test_a_package_alone_finds_the_shared_definitions_through_train_resume_on_path(tmp_path):
    """A copy of the package alone (no lib/ beside it, no installed data files): the
    definitions beside the library `train-resume --lib` prints; with no train-resume
    either, none (MissingDefinitions)."""
    shutil.copytree(ROOT / "train_resume", tmp_path / "pkg" / "train_resume")
    code = (
        "from train_resume import layout\n"
        "try:\n print(layout.saved_dir('/o'), layout.find(layout.SHARED))\n"
        "except layout.MissingDefinitions as err:\n print('missing:', err)\n"
    )
    env = {"PYTHONPATH": str(tmp_path / "pkg"), "HOME": str(tmp_path)}
    for path, expected in [
        (f"{ROOT / 'bin'}:/usr/bin:/bin", f"/o/.train-resume/saved {ROOT}/lib/{layout.SHARED}"),
        ("/usr/bin:/bin", "missing: cannot find train-resume's shared definitions"),
    ]:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=clean_env(PATH=path, **env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.stdout.startswith(expected), done.stderr


@pytest.fixture
def no_definitions(monkeypatch):
    """The shared definitions cannot be found (an install that lost the library)."""
    monkeypatch.setattr(layout, "_defs", {})
    monkeypatch.setitem(layout._searched, layout.SHARED, None)


def test_without_the_shared_definitions_no_record_is_written_and_each_says_so(
    tmp_path, capsys, no_definitions
):
    """The records cannot be named: one warning each, nothing written, nothing raised
    into the training."""
    ckpt = tmp_path / "checkpoint-2"
    ckpt.mkdir()
    (ckpt / "trainer_state.json").write_text('{"global_step": 2}')
    callback.record_end(str(tmp_path), callback.MAX_STEPS, step=2, max_steps=2)
    callback._record_saves(str(tmp_path), 2)
    hook._record_failed_load(str(ckpt), ValueError("damaged"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "⚠️ could not record the end of training in " + str(tmp_path),
        "⚠️ could not record the save of checkpoint-2 in " + str(tmp_path),
        "⚠️ could not record the failed load of " + str(ckpt) + " in " + str(tmp_path),
    ]
    assert all("cannot find train-resume's shared definitions" in line for line in lines)


def test_without_the_shared_definitions_no_stop_signal_is_watched_and_it_says_so(
    capsys, monkeypatch, no_definitions
):
    pytest.importorskip("transformers")
    from train_resume.resume_callback import WandbResumeCallback

    monkeypatch.delenv("TRAIN_RESUME_STOP_SIGNALS", raising=False)
    before = signal.getsignal(signal.SIGUSR1)
    WandbResumeCallback()._watch_signals()
    assert signal.getsignal(signal.SIGUSR1) is before
    assert "⚠️ no stop signal is watched" in capsys.readouterr().err
