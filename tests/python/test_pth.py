"""The hand-off without PYTHONPATH: train-resume installed in the trainer's environment
(`pip install .` or `pip install -e .`, as `make venv-ml` does) puts train-resume.pth in
its site-packages, which installs the hook in every interpreter of that environment while
a decision is in force, and does nothing otherwise.

The environments are fresh venvs that see the ML stack of the project's .venv through a
path-only .pth line (so none of .venv's own .pth files, its editable train-resume
included, run in them), with train-resume installed from a copy of the tree, or absent.
A run script overwrites PYTHONPATH (taking train-resume's bootstrap off it) before it
starts the trainer; the job is SIGKILLed after a checkpoint and started again:

- installed (wheel or editable): the trainer resumes, through the .pth;
- absent: the limit, as documented (docs/python.md, "When the hand-off cannot load"): nothing of
  train-resume runs in the trainer, which starts at step 0 over the checkpoints, and its
  W&B rows go into the resumed run (WANDB_RESUME=must): exit 0.
"""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import ROOT, TRAIN_RESUME

pytest.importorskip("transformers")
from test_launchers import segment, state, stored_run_id, tag_log_history, wandb_run_ids  # noqa: E402
from test_output_dir import assert_resumed, decision_checkpoint, env_for, loss_rows  # noqa: E402

SHAPES = Path(__file__).with_name("shapes")
HOOKED = "import sys; print('train_resume.hook' in sys.modules)"


def copy_source(dest):
    dest.mkdir(parents=True)
    for name in ("bin", "lib", "train_resume", "pyproject.toml", "setup.py", "README.md"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    for cache in dest.rglob("__pycache__"):
        shutil.rmtree(cache)


def make_env(base, how):
    """A venv at BASE/venv that sees the ML stack; train-resume installed HOW."""
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(
        subprocess.run(
            [venv / "bin" / "python", "-c", purelib], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    (site / "ml-stack.pth").write_text(sysconfig.get_path("purelib") + "\n")
    if how != "absent":
        src = base / "src"
        copy_source(src)
        pip = [venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, *(["-e"] if how == "pip install -e ." else []), src], check=True)
    return venv


@pytest.fixture(scope="module", params=["pip install .", "pip install -e .", "absent"])
def trainer_env(request, tmp_path_factory):
    return request.param, make_env(tmp_path_factory.mktemp("env"), request.param)


def test_the_pth_installs_the_hook_only_while_a_decision_is_in_force(trainer_env, tmp_path):
    how, venv = trainer_env
    python = [str(venv / "bin" / "python"), "-c", HOOKED]
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def hooked(**env):
        env = {**base, **env}
        done = subprocess.run(python, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0 and not done.stderr, done.stderr
        return done.stdout.strip()

    installed = how != "absent"
    assert hooked() == "False"
    assert hooked(TRAIN_RESUME_OUTPUT_DIR=str(tmp_path)) == str(installed)
    assert hooked(TRAIN_RESUME_CHECKPOINT=str(tmp_path / "checkpoint-2")) == str(installed)
    assert hooked(TRAIN_RESUME_OUTPUT_DIR=str(tmp_path), TRAIN_RESUME_HOOK="0") == "False"
    assert hooked(TRAIN_RESUME_OUTPUT_DIR=str(tmp_path), PYTHONPATH="/elsewhere") == str(installed)
    if installed:
        pth = list(venv.glob("lib/python*/site-packages/train-resume.pth"))
        assert [p.read_text() for p in pth] == [
            (ROOT / "train_resume" / "bootstrap" / "train-resume.pth").read_text()
        ]


def test_a_run_script_that_overwrites_pythonpath(trainer_env, tmp_path):
    how, venv = trainer_env
    work = tmp_path / "work dir"
    work.mkdir()
    out = work / "out"
    cmd = [TRAIN_RESUME, "-o", out, "--", SHAPES / "run_pythonpath.sh", "--output_dir", out]
    cmd += ["--max_steps", 6, "--save_steps", 2]
    env = env_for(out, PYTHON=venv / "bin" / "python")
    first, second = work / "segment-1.log", work / "segment-2.log"
    assert segment(cmd, work, env, first, kill_after=out / "checkpoint-2") == "killed"
    chosen = decision_checkpoint(out, env)
    run_id = stored_run_id(chosen) if how != "absent" else None
    tag_log_history(chosen)
    status = segment(cmd, work, env, second)
    text = second.read_text()
    assert status == 0, text[-4000:]
    final = out / "checkpoint-6"
    if how != "absent":
        assert f"▶ handing off: resume from {chosen}, W&B run {run_id}" in text
        assert_resumed(final, chosen)
        assert wandb_run_ids(out) == [run_id, run_id]
        return
    # The hand-off cannot load: no line of it, a fresh start at step 0 over the checkpoints.
    assert "handing off" not in text
    assert [row["step"] for row in loss_rows(final)] == list(range(1, 7))
    assert not any("train_resume_test" in str(row) for row in state(final)["log_history"])
    # W&B: the decision found the id in the W&B folder (no callback stored it) and
    # exported it with WANDB_RESUME=must: the fresh trajectory went into that run.
    ids = wandb_run_ids(out)
    assert len(ids) == 2 and ids[0] == ids[1]
    assert f"export WANDB_RUN_ID={ids[0]}" in text and "export WANDB_RESUME=must" in text


def test_the_hook_finds_the_bash_library_of_its_install(trainer_env):
    """What the hook runs to decide for another dir: beside the imported package (an
    editable install's clone), else in the installed data files (pip install .); the
    definitions both sides share (train_resume.layout) beside it."""
    how, venv = trainer_env
    if how == "absent":
        pytest.skip("no package, no hook")
    code = (
        "from train_resume import hook, layout\n"
        "print(hook._library()); print(layout.find(layout.SHARED))"
    )
    done = subprocess.run(
        [venv / "bin" / "python", "-c", code],
        cwd=venv,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    lib = venv.parent / "src" / "lib"
    if how == "pip install .":
        lib = venv / "share" / "train-resume" / "lib"
    assert done.stdout.splitlines() == [
        str(lib / "wandb_resume.sh"),
        str(lib / "wandb_resume" / "shared.env"),
    ]
