"""Only deterministic load failures are remembered (issue 19, item 3).

A load error that may pass (EIO, ESTALE, a timeout, ...) or that is a permission
problem is not recorded as a broken checkpoint: that start fails, and the next start
resumes the same checkpoint. A failure that is the checkpoint's own is still
recorded, and the next start passes it over. End to end through bin/train-resume
with a real transformers Trainer (tests/python/shapes/causal_lm.py, W&B offline);
the error is raised once, where the Trainer loads the model weights
(tests/python/shapes/load_fault.py). The judging itself (train_resume/failures.py)
is tested on each kind of error below, without a trainer.
"""

import errno
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import TRAIN_RESUME, run

from train_resume import failures

SHAPES = Path(__file__).with_name("shapes")
SCRIPT, FAULT = SHAPES / "causal_lm.py", SHAPES / "load_fault.py"


def state(checkpoint):
    return json.loads((checkpoint / "trainer_state.json").read_text())


def losses(checkpoint):
    return [(r["step"], r["loss"]) for r in state(checkpoint)["log_history"] if "loss" in r]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run of 4 steps (checkpoint-2, checkpoint-4) made through train-resume."""
    pytest.importorskip("transformers")
    work = tmp_path_factory.mktemp("trained")
    out = work / "out"
    cmd = [TRAIN_RESUME, "-o", out, "--", sys.executable, SCRIPT, "--output_dir", out]
    result = run([*cmd, "--max_steps", 4], work, WANDB_DIR=out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def start(out, *fault):
    """The job's command: train-resume, then the script (under load_fault.py KIND)."""
    cmd = [TRAIN_RESUME, "-o", out, "--", sys.executable, *fault, SCRIPT]
    cmd += ["--output_dir", out, "--max_steps", 6]
    return run(cmd, out.parent, WANDB_DIR=out)


@pytest.fixture
def out(trained, tmp_path):
    work = tmp_path / "work dir"
    shutil.copytree(trained, work / "out")
    return work / "out"


def test_an_eio_while_loading_the_newest_checkpoint_is_not_recorded_the_next_start_resumes_it(out):
    newest = out / "checkpoint-4"
    failed = start(out, FAULT, "eio")
    assert failed.returncode != 0
    assert f"🔄 resuming from checkpoint: {newest}" in failed.stderr
    assert f"OSError: [Errno {errno.EIO}] {os.strerror(errno.EIO)}" in failed.stderr  # re-raised
    assert (
        f"⚠️ loading {newest} failed with an error that may pass (EIO): OSError: [Errno 5] "
        f"{os.strerror(errno.EIO)}: '{newest / 'model.safetensors'}'. Not recorded as a broken "
        "checkpoint: the next start tries it again"
    ) in failed.stderr
    assert not (out / ".train-resume" / "failed").exists()
    assert not (out / "checkpoint-6").exists()

    again = start(out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"🔄 resuming from checkpoint: {newest}" in again.stderr
    assert "skipping" not in again.stderr
    # It went on from step 4: the restored history is checkpoint-4's, then 5 and 6.
    final = losses(out / "checkpoint-6")
    assert [step for step, _ in final] == [1, 2, 3, 4, 5, 6]
    assert final[:4] == losses(newest)


def test_a_deterministic_load_failure_is_still_recorded_and_the_next_start_takes_the_one_before(
    out,
):
    newest, previous = out / "checkpoint-4", out / "checkpoint-2"
    failed = start(out, FAULT, "damaged")
    assert failed.returncode != 0
    record = out / ".train-resume" / "failed" / "checkpoint-4"
    line = "SafetensorError: Error while deserializing header: HeaderTooLarge"
    assert record.read_text() == line + "\n"
    assert f"❌ the trainer failed to load {newest}: {line} (recorded in {record})" in (
        failed.stderr
    )
    assert "Not recorded" not in failed.stderr

    again = start(out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"⚠️ skipping {newest}: the trainer failed to load it: {line}" in again.stderr
    assert f"🔄 resuming from checkpoint: {previous}" in again.stderr


@pytest.mark.parametrize("kind", ["rust-eio", "permission"])
def test_other_errors_not_the_checkpoints_own_are_not_recorded_in_a_real_trainer_either(out, kind):
    failed = start(out, FAULT, kind)
    assert failed.returncode != 0
    assert "Not recorded as a broken checkpoint" in failed.stderr
    assert not (out / ".train-resume" / "failed").exists()


# The judging, error by error (no trainer).


def error_of(type_name, message, base=Exception):
    """An exception of a type named TYPE_NAME (as a library's own error type)."""
    return type(type_name, (base,), {})(message)


def oserror(name):
    number = getattr(errno, name)
    return OSError(number, os.strerror(number), "/out/checkpoint-4/model.safetensors")


@pytest.mark.parametrize(
    "name",
    ["EIO", "ESTALE", "EAGAIN", "ETIMEDOUT", "ENOTCONN", "ENODEV", "EMFILE", "ECONNRESET"],
)
def test_oserrors_that_may_pass_are_transient(name):
    assert failures.kind(oserror(name)) == "transient"


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError("timed out"),
        ConnectionResetError(errno.ECONNRESET, "reset"),
        InterruptedError(errno.EINTR, "interrupted"),
        error_of("ReadTimeout", "read timed out"),
        error_of("DistBackendError", "NCCL error: remote process exited", RuntimeError),
        error_of("SafetensorError", "I/O error: Input/output error (os error 5)"),
        RuntimeError("reading /x: [Errno 116] Stale file handle"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_timeouts_the_jobs_collectives_and_errno_in_a_message_are_transient(exc):
    assert failures.kind(exc) == "transient"


def test_an_eio_wrapped_by_the_library_that_met_it_is_transient():
    try:
        try:
            raise oserror("EIO")
        except OSError as inner:
            raise RuntimeError("PytorchStreamReader failed reading file data/0") from inner
    except RuntimeError as outer:
        assert failures.kind(outer) == "transient"


@pytest.mark.parametrize(
    "exc",
    [
        PermissionError(errno.EACCES, "Permission denied", "/out/checkpoint-4/optimizer.pt"),
        OSError(errno.EPERM, "Operation not permitted"),
        RuntimeError("open /x: Permission denied (os error 13)"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_permission_problems_are_not_the_checkpoints(exc):
    assert failures.kind(exc) == "permission"


@pytest.mark.parametrize(
    "exc",
    [
        FileNotFoundError(errno.ENOENT, "No such file or directory", "trainer_state.json"),
        RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central"),
        RuntimeError("Error(s) in loading state_dict for LlamaForCausalLM: size mismatch"),
        ValueError("Can't find a valid checkpoint at /out/checkpoint-4"),
        json.JSONDecodeError("Expecting value", "", 0),
        error_of("SafetensorError", "Error while deserializing header: HeaderTooLarge"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_checkpoints_own_failures_are_deterministic(exc):
    assert failures.kind(exc) == "deterministic"


def test_to_record_says_why_not_in_one_line_and_survives_braces_in_paths(capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert failures.to_record("/out/{x}/checkpoint-4", oserror("ESTALE")) is False
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        "train-resume: ⚠️ loading /out/{x}/checkpoint-4 failed (rank 1) with an error that "
        "may pass (ESTALE): OSError: [Errno 116] Stale file handle: "
    )
    assert failures.to_record("/out/checkpoint-4", ValueError("bad")) is True
    assert capsys.readouterr().err == ""
