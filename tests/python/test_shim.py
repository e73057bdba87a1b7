"""python -m train_resume: argv, __main__, exit codes, -m modules, the resume arg."""

import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, TRAIN_RESUME, run, shim

SHOW = textwrap.dedent(
    """
    import json, sys
    import helper
    print(json.dumps({"argv": sys.argv, "name": __name__, "helper": helper.X}))
    """
)


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_runs_a_script_with_the_argv_and_main_it_would_see_run_directly(work):
    (work / "sub").mkdir()
    write(work / "sub" / "train.py", SHOW)
    write(work / "sub" / "helper.py", "X = 'sibling import works'\n")
    direct = run([sys.executable, "sub/train.py", "--lr", "1e-3", "a b"], work)
    shimmed = shim(["sub/train.py", "--lr", "1e-3", "a b"], work)
    assert direct.returncode == shimmed.returncode == 0, shimmed.stderr
    assert json.loads(shimmed.stdout) == json.loads(direct.stdout)
    assert json.loads(shimmed.stdout)["name"] == "__main__"


def test_runs_a_module_with_m_as_python_m_would(work):
    pkg = work / "mypkg"
    pkg.mkdir()
    write(pkg / "__init__.py", "")
    write(pkg / "helper.py", "X = 1\n")
    write(pkg / "train.py", SHOW.replace("import helper", "from mypkg import helper"))
    direct = run([sys.executable, "-m", "mypkg.train", "x"], work)
    shimmed = shim(["-m", "mypkg.train", "x"], work)
    assert shimmed.returncode == 0, shimmed.stderr
    assert json.loads(shimmed.stdout) == json.loads(direct.stdout)
    assert json.loads(shimmed.stdout)["argv"][0].endswith("mypkg/train.py")


def test_passes_exit_status_zero_and_three_through(work):
    write(work / "ok.py", "print('fine')\n")
    write(work / "three.py", "import sys; sys.exit(3)\n")
    assert shim(["ok.py"], work).returncode == 0
    assert shim(["three.py"], work).returncode == 3


def test_a_systemexit_message_is_printed_and_exits_1(work):
    write(work / "msg.py", "raise SystemExit('bad config')\n")
    result = shim(["msg.py"], work)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("bad config")


def test_an_uncaught_exception_shows_its_traceback_and_exits_1(work):
    write(work / "boom.py", "def f():\n    raise ValueError('boom')\nf()\n")
    result = shim(["boom.py"], work)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "ValueError: boom" in result.stderr


def test_leaves_the_arguments_alone_by_default_when_resuming(work):
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv[1:]))\n")
    result = shim(["t.py", "--x", "1"], work, TRAIN_RESUME_CHECKPOINT="/ck/checkpoint-4")
    assert json.loads(result.stdout) == ["--x", "1"]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_resume_arg_appends_resume_from_checkpoint_when_resuming(work, how):
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv[1:]))\n")
    args, env = (["--resume-arg"], {}) if how == "flag" else ([], {"TRAIN_RESUME_RESUME_ARG": 1})
    result = shim(
        [*args, "t.py", "--x", "1"], work, TRAIN_RESUME_CHECKPOINT="/ck/checkpoint-4", **env
    )
    assert json.loads(result.stdout) == ["--x", "1", "--resume_from_checkpoint", "/ck/checkpoint-4"]


def test_resume_arg_adds_nothing_on_a_new_run(work):
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv[1:]))\n")
    assert json.loads(shim(["--resume-arg", "t.py", "--x", "1"], work).stdout) == ["--x", "1"]


def test_resume_arg_keeps_the_trainers_own_resume_arg_and_warns_when_it_differs(work):
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv[1:]))\n")
    ck = "/ck/checkpoint-4"
    same = shim(
        ["--resume-arg", "t.py", f"--resume_from_checkpoint={ck}"], work, TRAIN_RESUME_CHECKPOINT=ck
    )
    assert json.loads(same.stdout) == [f"--resume_from_checkpoint={ck}"]
    assert "differs" not in same.stderr
    other = shim(
        ["--resume-arg", "t.py", "--resume-from-checkpoint", "/x/c-2"],
        work,
        TRAIN_RESUME_CHECKPOINT=ck,
    )
    assert json.loads(other.stdout) == ["--resume-from-checkpoint", "/x/c-2"]
    assert "differs from the decision" in other.stderr


def test_no_resume_arg_turns_the_resume_arg_env_off(work):
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv[1:]))\n")
    result = shim(
        ["--no-resume-arg", "t.py"],
        work,
        TRAIN_RESUME_CHECKPOINT="/ck/checkpoint-4",
        TRAIN_RESUME_RESUME_ARG=1,
    )
    assert json.loads(result.stdout) == []


def test_the_shim_installs_the_hand_off_in_its_own_process(work):
    write(work / "t.py", "import sys; print(type(sys.meta_path[0]).__name__)\n")
    assert shim(["t.py"], work).stdout.strip() == "_Hook"


def test_without_a_script_it_is_a_usage_error(work):
    result = shim([], work)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_importing_the_callback_and_hook_imports_neither_transformers_nor_wandb(work):
    code = (
        "import sys, train_resume.callback, train_resume.hook as h; h.activate();"
        "print(sorted(m for m in ('transformers', 'wandb', 'torch') if m in sys.modules))"
    )
    result = run([sys.executable, "-c", code], work)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def resuming(out, step=2):
    """OUT with one complete checkpoint-STEP, so that train-resume decides to resume: the
    files of a real Trainer save (tests/fixtures/saves/full), global_step set to STEP."""
    checkpoint = out / f"checkpoint-{step}"
    shutil.copytree(ROOT / "tests" / "fixtures" / "saves" / "full" / "checkpoint-2", checkpoint)
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    state.update(global_step=step, max_steps=step + 2)
    (checkpoint / "trainer_state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
    return checkpoint


SEEN = (
    "import json, os, sys; print(json.dumps({'argv': sys.argv,"
    " 'hook': type(sys.meta_path[0]).__name__,"
    " 'sitecustomize': getattr(sys.modules.get('sitecustomize'), '__file__', None),"
    " 'transformers': 'transformers' in sys.modules}))\n"
)


def test_train_resume_runs_python_scripts_as_given_with_the_hand_off_installed(work):
    """`train-resume -- python -u t.py a`: argv untouched; the bootstrap installed the hook
    and imported nothing heavy."""
    write(work / "t.py", SEEN)
    out = work / "out"
    resuming(out)
    result = run([TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "-u", "t.py", "a"], work)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["argv"] == ["t.py", "a"]
    assert seen["hook"] == "_Hook"
    assert seen["sitecustomize"] == str(ROOT / "train_resume" / "bootstrap" / "sitecustomize.py")
    assert seen["transformers"] is False


def test_train_resume_gives_the_hand_off_to_python_processes_started_by_a_shell_script(work):
    write(work / "t.py", SEEN)
    write(work / "run.sh", '#!/bin/sh\nexec "$PY" t.py "$@"\n').chmod(0o755)
    result = run(
        [TRAIN_RESUME, "-q", "-o", work / "out", "--", "./run.sh", "x"], work, PY=sys.executable
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hook"] == "_Hook"


def test_train_resume_runs_python_c_as_given(work):
    result = run(
        [TRAIN_RESUME, "-q", "-o", work / "out", "--", sys.executable, "-c", "print('as given')"],
        work,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "as given"


def test_train_resume_resume_arg_sends_python_scripts_through_the_shim(work):
    """TRAIN_RESUME_RESUME_ARG=1 `train-resume -- python -u t.py a`: the flags stay, the
    shim appends the resume arg."""
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv))\n")
    out = work / "out"
    checkpoint = resuming(out)
    cmd = [TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "-u", "t.py", "a"]
    result = run(cmd, work, TRAIN_RESUME_RESUME_ARG=1)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["t.py", "a", "--resume_from_checkpoint", str(checkpoint)]


def test_train_resume_resume_arg_sends_python_m_modules_through_the_shim(work):
    pkg = work / "mypkg"
    pkg.mkdir()
    write(pkg / "__init__.py", "")
    write(pkg / "train.py", "import sys, json; print(json.dumps(sys.argv[1:]))\n")
    out = work / "out"
    checkpoint = resuming(out, 3)
    cmd = [TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "-m", "mypkg.train"]
    result = run(cmd, work, TRAIN_RESUME_RESUME_ARG=1)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["--resume_from_checkpoint", str(checkpoint)]


def test_train_resume_sends_python_m_modules_as_given_by_default(work):
    pkg = work / "mypkg"
    pkg.mkdir()
    write(pkg / "__init__.py", "")
    write(pkg / "train.py", "import sys, json; print(json.dumps(sys.argv[1:]))\n")
    out = work / "out"
    resuming(out, 3)
    result = run([TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "-m", "mypkg.train"], work)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_accelerate_launch_runs_the_shim_in_each_process(work):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("accelerate is not installed (make venv-ml)")
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv[1:]), flush=True)\n")
    out = work / "out"
    checkpoint = resuming(out, 5)
    cmd = [TRAIN_RESUME, "-q", "-o", out, "--", accelerate, "launch", "--cpu"]
    cmd += ["--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no"]
    cmd += ["--dynamo_backend", "no", "-m", "train_resume", "--resume-arg", "t.py", "--x", "1"]
    result = run(cmd, work)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "--x",
        "1",
        "--resume_from_checkpoint",
        str(checkpoint),
    ]


def test_train_resume_keeps_interpreter_flags_with_a_value_before_the_shim(work):
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv))\n")
    out = work / "out"
    checkpoint = resuming(out)
    cmd = [TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "-W", "ignore", "-u", "t.py"]
    result = run(cmd, work, TRAIN_RESUME_RESUME_ARG=1)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["t.py", "--resume_from_checkpoint", str(checkpoint)]


def test_train_resume_hook_0_runs_python_without_the_hand_off(work):
    write(work / "t.py", SEEN)
    out = work / "out"
    resuming(out)
    result = run(
        [TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "t.py"], work, TRAIN_RESUME_HOOK=0
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["hook"] != "_Hook"
    assert seen["sitecustomize"] is None


def test_the_bootstrap_installs_nothing_with_train_resume_hook_0_set_later(work):
    write(work / "t.py", SEEN)
    bootstrap = ROOT / "train_resume" / "bootstrap"
    result = run(
        [sys.executable, "t.py"], work, PYTHONPATH=f"{bootstrap}:{ROOT}", TRAIN_RESUME_HOOK=0
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hook"] != "_Hook"


def test_the_bootstrap_warns_and_goes_on_when_train_resume_cannot_be_imported(work):
    """An interpreter where train_resume does not import (here: a broken one first)."""
    broken = work / "broken" / "train_resume"
    broken.mkdir(parents=True)
    write(broken / "__init__.py", "raise ImportError('simulated')\n")
    write(work / "t.py", "print('ran')\n")
    bootstrap = ROOT / "train_resume" / "bootstrap"
    result = run([sys.executable, "t.py"], work, PYTHONPATH=f"{bootstrap}:{broken.parent}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran"
    assert "train-resume: ⚠️ no hand-off in" in result.stderr
    assert "cannot import train_resume (simulated)" in result.stderr


USER_SITE = """
import builtins, os
builtins.USER_SITECUSTOMIZE_RAN = __name__
"""


def test_an_existing_sitecustomize_on_the_users_path_still_runs(work):
    user = work / "user site"
    user.mkdir()
    write(user / "sitecustomize.py", USER_SITE)
    write(
        work / "t.py",
        "import builtins, json, sys\n"
        "print(json.dumps({'ran': getattr(builtins, 'USER_SITECUSTOMIZE_RAN', None),"
        " 'module': sys.modules['sitecustomize'].__file__,"
        " 'hook': type(sys.meta_path[0]).__name__}))\n",
    )
    out = work / "out"
    resuming(out)
    cmd = [TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "t.py"]
    result = run(cmd, work, PYTHONPATH=user)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen == {
        "ran": "sitecustomize",
        "module": str(user / "sitecustomize.py"),
        "hook": "_Hook",
    }


def test_a_failing_sitecustomize_of_the_user_fails_as_it_would_without_us(work):
    user = work / "user"
    user.mkdir()
    write(user / "sitecustomize.py", "raise RuntimeError('their own bug')\n")
    write(work / "t.py", "import sys; print(type(sys.meta_path[0]).__name__)\n")
    without = run([sys.executable, "t.py"], work, PYTHONPATH=user)
    result = run(
        [TRAIN_RESUME, "-q", "-o", work / "out", "--", sys.executable, "t.py"],
        work,
        PYTHONPATH=user,
    )
    assert result.returncode == without.returncode == 0, result.stderr
    assert "Error in sitecustomize; set PYTHONVERBOSE for traceback:" in without.stderr
    assert "RuntimeError: their own bug" in without.stderr
    assert "Error in sitecustomize; set PYTHONVERBOSE for traceback:" in result.stderr
    assert "RuntimeError: their own bug" in result.stderr
    assert result.stdout.strip() == "_Hook"


def test_two_copies_of_the_bootstrap_on_the_path_chain_to_the_users_once(work):
    """A clone's and an install's bootstrap both on PYTHONPATH (one exported by an earlier
    decision): the user's sitecustomize runs once, the hook is installed, no loop."""
    copy = work / "other install" / "train_resume" / "bootstrap"
    shutil.copytree(ROOT / "train_resume" / "bootstrap", copy)
    user = work / "user"
    user.mkdir()
    write(
        user / "sitecustomize.py",
        "import builtins\nbuiltins.RUNS = getattr(builtins, 'RUNS', 0) + 1\n",
    )
    write(
        work / "t.py",
        "import builtins, sys; print(builtins.RUNS, type(sys.meta_path[0]).__name__)\n",
    )
    bootstrap = ROOT / "train_resume" / "bootstrap"
    pythonpath = f"{bootstrap}:{copy}:{ROOT}:{user}"
    result = run([sys.executable, "t.py"], work, PYTHONPATH=pythonpath)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "_Hook"]
    assert "Error in sitecustomize" not in result.stderr


def test_train_resume_warns_when_a_python_command_will_not_load_the_hand_off(work):
    """On a resume, `python -S ...` runs no sitecustomize and no .pth: said before the exec."""
    out = work / "out"
    checkpoint = resuming(out)
    cmd = [TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "-S", "-c", "print('ran')"]
    result = run(cmd, work)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran"
    assert (
        f"train-resume: ⚠️ {sys.executable} -S does not load the hand-off (train_resume.hook: "
        "a Python started with -I, -E or -S, or one that cannot import train_resume): nothing "
        f"in it checks the decision, and its Trainer resumes {checkpoint} only if the script "
        "passes it to train() itself"
    ) in result.stderr


def test_train_resume_says_nothing_when_a_python_command_loads_the_hand_off(work):
    out = work / "out"
    resuming(out)
    cmd = [TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "-u", "-c", "print('ran')"]
    result = run(cmd, work)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_python_i_loads_the_hand_off_through_the_pth_of_an_installed_package(work):
    """-I drops PYTHONPATH (the bootstrap), not site-packages: where train-resume is
    installed (make venv-ml: pip install -e .), its train-resume.pth installs the hook."""
    import sysconfig

    if not (Path(sysconfig.get_path("purelib")) / "train-resume.pth").exists():
        pytest.skip(f"train-resume is not installed in {sys.prefix} (make venv-ml does it)")
    write(work / "t.py", SEEN)
    out = work / "out"
    resuming(out)
    cmd = [TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "-I", "t.py"]
    result = run(cmd, work)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    seen = json.loads(result.stdout)
    assert seen["hook"] == "_Hook" and seen["sitecustomize"] is None


LIBRARY = "from train_resume import hook; print(hook._library())"


def test_the_hook_finds_the_bash_library_through_train_resume_on_path_last(work):
    """A copy of the package alone (no lib/ beside it, no installed data files): the
    library is the one `train-resume --lib` prints; with no train-resume either, none."""
    shutil.copytree(ROOT / "train_resume", work / "pkg" / "train_resume")
    env = {"PYTHONPATH": str(work / "pkg"), "HOME": str(work)}
    found = run([sys.executable, "-c", LIBRARY], work, PATH=f"{ROOT / 'bin'}:/usr/bin:/bin", **env)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(ROOT / "lib" / "wandb_resume.sh")
    none = run([sys.executable, "-c", LIBRARY], work, PATH="/usr/bin:/bin", **env)
    assert none.stdout.strip() == "None"


def plan_error(work, real, **env):
    """hook._plan_for for a Trainer whose output_dir is REAL, in a fresh interpreter with
    ENV: its error, and that interpreter's stderr."""
    args = f"types.SimpleNamespace(output_dir={str(real)!r})"
    script = (
        "import types\nfrom train_resume import hook\n"
        f"trainer = types.SimpleNamespace(args={args})\n"
        "print(hook._plan_for(trainer).error)\n"
    )
    done = run([sys.executable, "-c", script], work, **env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr


def test_a_trainer_on_another_dir_without_the_library_stops_before_training(work):
    """The decision for the Trainer's own dir cannot be made: a DecisionError naming both
    dirs, never a fresh start over its checkpoints."""
    shutil.copytree(ROOT / "train_resume", work / "pkg" / "train_resume")
    error, _ = plan_error(
        work,
        work / "real",
        PYTHONPATH=work / "pkg",
        PATH="/usr/bin:/bin",
        TRAIN_RESUME_OUTPUT_DIR=work / "decided",
    )
    assert error == (
        f"❌ this Trainer's output_dir {work / 'real'} is not the dir the decision was made for "
        f"({work / 'decided'}), and the decision for {work / 'real'} failed: cannot find "
        "train-resume's bash library (lib/wandb_resume.sh). Stopped before training, so that "
        "no new run starts over its checkpoints"
    )


def test_a_trainer_on_another_dir_whose_decision_fails_stops_before_training(work):
    """The Trainer's own dir holds checkpoint-N folders, none complete: the bash library
    refuses (exit 1, its reasons on stderr), and the Trainer gets a DecisionError."""
    (work / "real" / "checkpoint-2").mkdir(parents=True)
    (work / "real" / "checkpoint-2" / "model.safetensors").write_bytes(b"")
    error, stderr = plan_error(work, work / "real", TRAIN_RESUME_OUTPUT_DIR=work / "decided")
    assert error == (
        f"❌ this Trainer's output_dir {work / 'real'} is not the dir the decision was made for "
        f"({work / 'decided'}), and the decision for {work / 'real'} failed (exit 1, above). "
        "Stopped before training, so that no new run starts over its checkpoints"
    )
    assert f"1 checkpoint-N folder(s) in {work / 'real'}, none complete:" in stderr
