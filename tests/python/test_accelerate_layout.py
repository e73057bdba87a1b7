"""Other checkpoint layouts get the truth: a real Accelerate loop
(tests/python/shapes/accelerate_loop.py) saving with accelerator.save_state, in Accelerate's
own layout (OUT/checkpoints/checkpoint_<i>) and in OUT/checkpoint-<step> folders, under
train-resume as docs/python.md's "Custom training loops" shows; SIGKILLed after a save and
started again with the same command, it resumes itself. The decision names such folders
as what they are (an Accelerate save_state folder, not a Trainer checkpoint), never
"probably interrupted".
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TRAIN_RESUME, clean_env

pytest.importorskip("accelerate")
sys.path.insert(0, str(ROOT / "examples"))
from demo import kill_tree  # noqa: E402

LOOP = Path(__file__).with_name("shapes") / "accelerate_loop.py"


def killed_once(cmd, cwd, env, log, saved, timeout=120):
    """Run CMD; SIGKILL its whole tree once SAVED (the last file of a save) exists."""
    started = time.monotonic()
    with open(log, "ab") as f:
        proc = subprocess.Popen(
            [str(c) for c in cmd], cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT
        )
        try:
            while not saved.exists():
                assert proc.poll() is None, Path(log).read_text()[-3000:]
                assert time.monotonic() - started < timeout
                time.sleep(0.02)
        finally:
            kill_tree(proc)


def same_command(cmd, cwd, env, log):
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    Path(log).write_text(done.stdout + done.stderr)
    return done


def explain(out, cwd):
    return subprocess.run(
        [str(TRAIN_RESUME), "-o", str(out), "--explain", "--json"],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
    )


def test_accelerate_s_own_layout_is_named_and_the_loop_resumes_itself(tmp_path):
    out = tmp_path / "out"
    cmd = [TRAIN_RESUME, "-o", out, "--", sys.executable, LOOP, "--output_dir", out]
    env = clean_env()
    saved = out / "checkpoints" / "checkpoint_0"
    killed_once(cmd, tmp_path, env, tmp_path / "1.log", saved / "custom_checkpoint_0.pkl")
    assert (saved / "random_states_0.pkl").exists()

    done = same_command(cmd, tmp_path, env, tmp_path / "2.log")
    assert done.returncode == 0, done.stderr[-3000:]
    warning = (
        f"{out}/checkpoints holds 1 Accelerate save_state folder(s) (checkpoint_0 ... "
        "checkpoint_0), not Trainer checkpoint-N folders: train-resume resumes HF Trainer "
        "checkpoints; a custom loop resumes such folders itself with "
        'accelerator.load_state(...), see "Custom training loops" in docs/python.md'
    )
    assert f"⚠️ {warning}" in done.stderr
    assert "probably interrupted" not in done.stderr
    assert f"resumed from the latest in {out}/checkpoints at step 2" in done.stdout
    assert "step 3 loss" in done.stdout and "step 1 loss" not in done.stdout
    assert "done at step 6" in done.stdout
    assert json.loads(explain(out, tmp_path).stdout)["warnings"][0].startswith(f"{out}/checkpoints")


def test_save_state_in_checkpoint_n_folders_is_named_and_the_documented_way_resumes(tmp_path):
    out = tmp_path / "out"
    loop = [sys.executable, LOOP, "--output_dir", out, "--layout", "checkpoint-N"]
    # The documented way for such a loop (docs/python.md): the decision starts nothing
    # itself (the loop resumes its own folders); train-resume still gives the lock and
    # supervise.
    cmd = [TRAIN_RESUME, "-o", out, "--checkpoint", "none", "--", *loop]
    env = clean_env()
    saved = out / "checkpoint-2" / "custom_checkpoint_0.pkl"
    killed_once(cmd, tmp_path, env, tmp_path / "1.log", saved)

    decision = explain(out, tmp_path)
    assert decision.returncode == 1 and decision.stdout == ""
    assert (
        f"  - {out}/checkpoint-2: an Accelerate save_state folder (custom_checkpoint_0.pkl, "
        "model.safetensors, optimizer.bin, random_states_0.pkl, scheduler.bin; no "
        "trainer_state.json), not a Trainer checkpoint: train-resume resumes HF Trainer "
        "checkpoints; a custom loop resumes such folders itself with "
        "accelerator.load_state(...)"
    ) in decision.stderr
    assert "probably interrupted" not in decision.stderr

    done = same_command(cmd, tmp_path, env, tmp_path / "2.log")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resumed from {out}/checkpoint-2 at step 2" in done.stdout
    assert "step 3 loss" in done.stdout and "step 1 loss" not in done.stdout
    assert "done at step 6" in done.stdout
