"""Make the benchmark's synthetic trees (in transformers' exact trainer_state.json format).

    python bench/generate.py DIR

DIR/typical  50 checkpoints with a ~1 MB trainer_state.json each, 20 W&B run folders
DIR/huge     one checkpoint whose trainer_state.json has a 200,000-entry log_history (~190 MB)
DIR/wide     10,000 checkpoints and 10,000 W&B run folders

Each checkpoint also holds the weights and state files of a real Trainer save
(tests/fixtures/saves/full/checkpoint-2: model.safetensors, optimizer.pt, scheduler.pt,
rng_state.pth, ...; about 1 MB), which the decision checks: hard links to one copy in
DIR/weights (10,000 copies would be 10 GB; the checks read the same bytes either way).
"""

import json
import os
import shutil
import sys
from pathlib import Path

SAVE = (
    Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "saves" / "full" / "checkpoint-2"
)

ROW = {  # one log_history row, with the keys GRPO logs
    "clip_ratio/high_max": 0.0,
    "clip_ratio/high_mean": 0.0,
    "clip_ratio/low_mean": 0.0,
    "clip_ratio/low_min": 0.0,
    "clip_ratio/region_mean": 0.0,
    "completions/clipped_ratio": 0.5,
    "completions/max_length": 8.0,
    "completions/max_terminated_length": 5.0,
    "completions/mean_length": 6.5,
    "completions/mean_terminated_length": 5.0,
    "completions/min_length": 5.0,
    "completions/min_terminated_length": 5.0,
    "entropy": 3.522,
    "epoch": 0.625,
    "frac_reward_zero_std": 0.0,
    "grad_norm": 2.885,
    "learning_rate": 0.0003333,
    "loss": 0.1631,
    "num_tokens": 146.0,
    "reward": 0.3125,
    "reward_std": 0.2652,
    "rewards/accuracy_reward/mean": 0.3125,
    "rewards/accuracy_reward/std": 0.2652,
    "step_time": 0.01631,
}


def state(step, rows, run_id):
    """A trainer_state.json text as transformers writes it (sorted keys, indent 2)."""
    return (
        json.dumps(
            {
                "best_global_step": None,
                "best_metric": None,
                "best_model_checkpoint": None,
                "epoch": step / 1000,
                "eval_steps": 500,
                "global_step": step,
                "is_hyper_param_search": False,
                "is_local_process_zero": True,
                "is_world_process_zero": True,
                "log_history": [dict(ROW, step=i) for i in range(1, rows + 1)],
                "logging_steps": 1,
                "max_steps": 1_000_000,
                "num_input_tokens_seen": 0,
                "num_train_epochs": 1,
                "save_steps": 50,
                "stateful_callbacks": {
                    "TrainerControl": {"args": {"should_save": True}, "attributes": {}},
                    "WandbResumeCallback": {
                        "args": {"wandb_project": "bench", "wandb_run_id": run_id},
                        "attributes": {"resume_count": 0},
                    },
                },
                "total_flos": 0,
                "train_batch_size": 2,
                "trial_name": None,
                "trial_params": None,
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )


def runs(wandb_dir, n, newest_id):
    wandb_dir.mkdir(parents=True)
    for i in range(n):
        run_id = newest_id if i == n - 1 else f"run{i:05d}"
        day, sec = divmod(i, 86400)
        h, rem = divmod(sec, 3600)
        m, s = divmod(rem, 60)
        folder = wandb_dir / f"run-202601{day + 1:02d}_{h:02d}{m:02d}{s:02d}-{run_id}"
        folder.mkdir()
        (folder / f"run-{run_id}.wandb").write_bytes(b":W&B")
    os.symlink(folder.name, wandb_dir / "latest-run")


def checkpoint(out, step, text, weights):
    """A checkpoint as the Trainer saves it: the weights and state files (hard links
    into WEIGHTS), then trainer_state.json, last."""
    d = out / f"checkpoint-{step}"
    d.mkdir(parents=True)
    for f in weights:
        os.link(f, d / f.name)
    (d / "trainer_state.json").write_text(text)


def main():
    root = Path(sys.argv[1])
    (root / "weights").mkdir(parents=True)
    weights = []
    for f in sorted(SAVE.iterdir()):
        if f.name != "trainer_state.json":
            weights.append(Path(shutil.copyfile(f, root / "weights" / f.name)))
    typical = root / "typical"
    for step in range(50, 2501, 50):
        checkpoint(typical, step, state(step, 1000, "typical-id"), weights)
    runs(typical / "wandb", 20, "typical-id")
    huge = root / "huge"
    checkpoint(huge, 200_000, state(200_000, 200_000, "huge-id"), weights)
    wide = root / "wide"
    small = state(1, 1, "wide-id")
    for step in range(1, 10_001):
        checkpoint(
            wide, step, small.replace('"global_step": 1,', f'"global_step": {step},'), weights
        )
    runs(wide / "wandb", 10_000, "wide-id")


if __name__ == "__main__":
    main()
