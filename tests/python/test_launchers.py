"""Every launcher shape, unchanged, resumes under train-resume: SIGKILL once a checkpoint
is complete, then the very same command again.

Shapes (tests/python/shapes/): an argparse script with --config cfg.yaml, an
HfArgumentParser(GRPOConfig) script, TRL's own grpo script (python -m trl.scripts.grpo
and the trl CLI, on a tiny model saved with save_pretrained and a local dataset file),
torchrun with 2 processes, accelerate launch (--cpu: one process; --multi_gpu: 2 CPU
processes), a plain transformers Trainer script and a ./run.sh wrapper; each calls bare
trainer.train() (TRL's script passes resume_from_checkpoint=None).

Proof of the resume: before the second start the rows of the chosen checkpoint's
log_history are tagged; the final checkpoint's log_history holds steps 1..N once each,
the tagged rows (restored) up to the checkpoint's step and untagged ones after it. One W&B
run id in both segments' offline run folders, in the checkpoints, and on every rank.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TRAIN_RESUME, clean_env, free_port

pytest.importorskip("trl")
sys.path.insert(0, str(ROOT / "examples"))
from demo import kill_tree  # noqa: E402

SHAPES = Path(__file__).with_name("shapes")
BIN = Path(sys.executable).parent
MAX_STEPS, SAVE_STEPS = 6, 2
TAG = "train_resume_test_restored_from"
GRPO = ["--per_device_train_batch_size", "2", "--num_generations", "2"]
GRPO += ["--max_completion_length", "8", "--learning_rate", "1e-3", "--report_to", "wandb"]
GRPO += ["--use_cpu", "true", "--bf16", "false", "--seed", "0", "--logging_steps", "1"]


def steps_args(out):
    return ["--output_dir", out, "--max_steps", MAX_STEPS, "--save_steps", SAVE_STEPS]


def trl_args(work, out):
    return [
        "--model_name_or_path",
        work / "tiny" / "model",
        "--dataset_name",
        work / "tiny" / "data",
        "--reward_funcs",
        "rewards.vowel_reward",
        *steps_args(out),
        *GRPO,
    ]


def shape_command(shape, work, out):
    """(train-resume options, COMMAND, ranks) for a shape."""
    py = sys.executable
    if shape == "argparse-config":
        cfg = work / "cfg.yaml"
        cfg.write_text(f"output_dir: '{out}'\nmax_steps: {MAX_STEPS}\nsave_steps: {SAVE_STEPS}\n")
        return ["--config", cfg], [py, SHAPES / "argparse_config.py", "--config", cfg], 1
    if shape == "hf-parser":
        return ["-o", out], [py, SHAPES / "hf_parser.py", *steps_args(out)], 1
    if shape == "trl-module":
        return ["-o", out], [py, "-m", "trl.scripts.grpo", *trl_args(work, out)], 1
    if shape == "trl-cli":
        return ["-o", out], [BIN / "trl", "grpo", *trl_args(work, out)], 1
    if shape == "torchrun":
        launcher = [BIN / "torchrun", "--nproc_per_node", "2", "--master_port", free_port()]
        return ["-o", out], [*launcher, SHAPES / "causal_lm.py", *steps_args(out)], 2
    if shape.startswith("accelerate"):
        # `--cpu` always takes accelerate's simple launcher (one process, accelerate
        # 1.15); `--multi_gpu` starts the processes through torchrun, and on a machine
        # without GPUs the script's use_cpu=True trains them on CPU (gloo).
        two = shape == "accelerate-2"
        launcher = [BIN / "accelerate", "launch", "--num_processes", "2"]
        launcher += ["--multi_gpu"] if two else ["--cpu"]
        launcher += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        launcher += ["--main_process_port", free_port()]
        return ["-o", out], [*launcher, SHAPES / "causal_lm.py", *steps_args(out)], 2 if two else 1
    if shape == "causal-lm":
        return ["-o", out], [py, SHAPES / "causal_lm.py", *steps_args(out)], 1
    if shape == "run-sh":
        return ["-o", out], [SHAPES / "run.sh", *steps_args(out)], 1
    raise ValueError(shape)


def complete(checkpoint):
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return str(state.get("global_step")) == checkpoint.name.rpartition("-")[2]


def segment(cmd, work, env, log, kill_after=None, timeout=600):
    """Run CMD in WORK; with kill_after, SIGKILL it and all its processes once that
    checkpoint is complete. Returns the exit status, or "killed"."""
    started = time.monotonic()
    with open(log, "ab") as f:
        proc = subprocess.Popen(
            [str(c) for c in cmd],
            cwd=work,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while proc.poll() is None:
                if kill_after is not None and complete(kill_after):
                    kill_tree(proc)
                    return "killed"
                assert time.monotonic() - started < timeout, f"over {timeout} s: {log}"
                time.sleep(0.02)
        finally:
            if proc.poll() is None:
                kill_tree(proc)
    return proc.returncode


def state(checkpoint):
    return json.loads((checkpoint / "trainer_state.json").read_text())


def stored_run_id(checkpoint):
    return state(checkpoint)["stateful_callbacks"]["WandbResumeCallback"]["args"]["wandb_run_id"]


def wandb_run_ids(out):
    """The run id of each offline run folder in OUT/wandb that W&B wrote into, by start."""
    folders = sorted((out / "wandb").glob("offline-run-*"), key=lambda p: p.name)
    return [data.name[4:-6] for f in folders for data in f.glob("run-*.wandb")]


def tag_log_history(checkpoint):
    """Tag each log_history row of CHECKPOINT (keys sorted, indent 2, as HF writes)."""
    path = checkpoint / "trainer_state.json"
    data = json.loads(path.read_text())
    for row in data["log_history"]:
        row[TAG] = checkpoint.name
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny model and tokenizer saved with save_pretrained, a local dataset file, and
    the reward function TRL's script imports by name."""
    d = tmp_path_factory.mktemp("tiny")
    subprocess.run([sys.executable, SHAPES / "make_tiny_model.py", d], check=True, env=clean_env())
    (d / "rewards.py").write_text(
        "def vowel_reward(completions, **kwargs):\n"
        "    return [sum(c in 'aeiou' for c in t) / max(len(t), 1) for t in completions]\n"
    )
    return d


SHAPE_NAMES = [
    "argparse-config",
    "hf-parser",
    "trl-module",
    "trl-cli",
    "torchrun",
    "accelerate-cpu",
    "accelerate-2",
    "causal-lm",
    "run-sh",
]


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_killed_after_a_checkpoint_and_started_again_it_resumes(shape, tiny, tmp_path):
    work = tmp_path / "work dir"
    work.mkdir()
    (work / "tiny").symlink_to(tiny)
    (work / "rewards.py").symlink_to(tiny / "rewards.py")
    out = work / "out"
    options, command, ranks = shape_command(shape, work, out)
    cmd = [TRAIN_RESUME, *options, "--", *command]
    env = clean_env(WANDB_DIR=out, PYTHON=sys.executable, HF_DATASETS_OFFLINE=1)
    env.update(TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    first, second = work / "segment-1.log", work / "segment-2.log"
    status = segment(cmd, work, env, first, kill_after=out / f"checkpoint-{SAVE_STEPS}")
    assert status == "killed", first.read_text()[-3000:]

    decision = subprocess.run(
        [str(c) for c in [TRAIN_RESUME, *options, "--explain", "--json"]],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    chosen = Path(json.loads(decision.stdout)["checkpoint"])
    resumed_at = int(chosen.name[11:])
    run_id = stored_run_id(chosen)
    assert run_id and json.loads(decision.stdout)["run_id"] == run_id
    tag_log_history(chosen)

    status = segment(cmd, work, env, second)
    text = second.read_text()
    assert status == 0, text[-4000:]
    final = out / f"checkpoint-{MAX_STEPS}"
    rows = [row for row in state(final)["log_history"] if "loss" in row]
    assert [row["step"] for row in rows] == list(range(1, MAX_STEPS + 1))
    assert [row.get(TAG) for row in rows] == [chosen.name] * resumed_at + [None] * (
        MAX_STEPS - resumed_at
    )
    assert state(final)["global_step"] == MAX_STEPS
    # One W&B run: both segments' folders, the checkpoints, every rank.
    assert wandb_run_ids(out) == [run_id, run_id]
    assert stored_run_id(final) == run_id
    if ranks == 1:
        assert f"▶ handing off: resume from {chosen}, W&B run {run_id}, WANDB_RESUME=must" in text
    for rank in range(ranks if ranks > 1 else 0):
        line = f"▶ handing off (rank {rank}): resume from {chosen}, W&B run {run_id}"
        assert line in text
    assert "differs from the decision" not in text
    assert "❌" not in text
