"""python -m train_resume: argv, __main__, exit codes, -m modules, the resume arg."""

import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import TRAIN_RESUME, run, shim

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


def test_appends_resume_from_checkpoint_when_resuming(work):
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv[1:]))\n")
    result = shim(["t.py", "--x", "1"], work, TRAIN_RESUME_CHECKPOINT="/ck/checkpoint-4")
    assert json.loads(result.stdout) == ["--x", "1", "--resume_from_checkpoint", "/ck/checkpoint-4"]


def test_adds_nothing_on_a_new_run(work):
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv[1:]))\n")
    assert json.loads(shim(["t.py", "--x", "1"], work).stdout) == ["--x", "1"]


def test_keeps_the_trainers_own_resume_arg_and_warns_when_it_differs(work):
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv[1:]))\n")
    ck = "/ck/checkpoint-4"
    same = shim(["t.py", f"--resume_from_checkpoint={ck}"], work, TRAIN_RESUME_CHECKPOINT=ck)
    assert json.loads(same.stdout) == [f"--resume_from_checkpoint={ck}"]
    assert "differs" not in same.stderr
    other = shim(["t.py", "--resume-from-checkpoint", "/x/c-2"], work, TRAIN_RESUME_CHECKPOINT=ck)
    assert json.loads(other.stdout) == ["--resume-from-checkpoint", "/x/c-2"]
    assert "differs from the decision" in other.stderr


def test_no_resume_arg_turns_the_resume_arg_off(work):
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv[1:]))\n")
    result = shim(["--no-resume-arg", "t.py"], work, TRAIN_RESUME_CHECKPOINT="/ck/checkpoint-4")
    assert json.loads(result.stdout) == []


def test_without_a_script_it_is_a_usage_error(work):
    result = shim([], work)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_importing_the_callback_and_hook_imports_neither_transformers_nor_wandb(work):
    code = (
        "import sys, train_resume.callback, train_resume.hook as h; h.install();"
        "print(sorted(m for m in ('transformers', 'wandb', 'torch') if m in sys.modules))"
    )
    result = run([sys.executable, "-c", code], work)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_train_resume_sends_python_scripts_through_the_shim(work):
    """`train-resume -- python -u t.py a`: the flags stay, the shim adds the resume arg."""
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv))\n")
    out = work / "out"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}\n')
    result = run([TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "-u", "t.py", "a"], work)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        "t.py",
        "a",
        "--resume_from_checkpoint",
        str(out / "checkpoint-2"),
    ]


def test_train_resume_runs_python_c_as_given(work):
    result = run(
        [TRAIN_RESUME, "-q", "-o", work / "out", "--", sys.executable, "-c", "print('as given')"],
        work,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "as given"


def test_train_resume_sends_python_m_modules_through_the_shim(work):
    pkg = work / "mypkg"
    pkg.mkdir()
    write(pkg / "__init__.py", "")
    write(pkg / "train.py", "import sys, json; print(json.dumps(sys.argv[1:]))\n")
    out = work / "out"
    (out / "checkpoint-3").mkdir(parents=True)
    (out / "checkpoint-3" / "trainer_state.json").write_text('{"global_step": 3}\n')
    result = run([TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "-m", "mypkg.train"], work)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["--resume_from_checkpoint", str(out / "checkpoint-3")]


def test_accelerate_launch_runs_the_shim_in_each_process(work):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("accelerate is not installed (make venv-ml)")
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv[1:]), flush=True)\n")
    out = work / "out"
    (out / "checkpoint-5").mkdir(parents=True)
    (out / "checkpoint-5" / "trainer_state.json").write_text('{"global_step": 5}\n')
    cmd = [TRAIN_RESUME, "-q", "-o", out, "--", accelerate, "launch", "--cpu"]
    cmd += ["--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no"]
    cmd += ["--dynamo_backend", "no", "-m", "train_resume", "t.py", "--x", "1"]
    result = run(cmd, work)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "--x",
        "1",
        "--resume_from_checkpoint",
        str(out / "checkpoint-5"),
    ]


def test_train_resume_keeps_interpreter_flags_with_a_value_before_the_shim(work):
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv))\n")
    out = work / "out"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}\n')
    cmd = [TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "-W", "ignore", "-u", "t.py"]
    result = run(cmd, work)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        "t.py",
        "--resume_from_checkpoint",
        str(out / "checkpoint-2"),
    ]


def test_train_resume_shim_0_runs_python_as_given(work):
    write(work / "t.py", "import sys, json; print(json.dumps(sys.argv))\n")
    out = work / "out"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}\n')
    result = run(
        [TRAIN_RESUME, "-q", "-o", out, "--", sys.executable, "t.py"], work, TRAIN_RESUME_SHIM=0
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["t.py"]
