"""A TRL GRPO script with its own argparse and a YAML config (the seed's main.py shape):

    python argparse_config.py --config cfg.yaml

cfg.yaml holds output_dir, max_steps, save_steps. It calls bare ``trainer.train()``
and knows nothing of train-resume; an unknown argument is an error (exit 2).
"""

import argparse
import os
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
os.environ.setdefault("WANDB_MODE", "offline")

from datasets import Dataset  # noqa: E402
from tiny_grpo import PROMPTS, build_model, build_tokenizer, vowel_reward  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    opts = parser.parse_args()
    with open(opts.config) as f:
        cfg = yaml.safe_load(f)
    args = GRPOConfig(
        output_dir=cfg["output_dir"],
        max_steps=cfg["max_steps"],
        save_steps=cfg["save_steps"],
        logging_steps=1,
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=8,
        learning_rate=1e-3,
        report_to=["wandb"],
        use_cpu=True,
        bf16=False,
        seed=0,
    )
    tokenizer = build_tokenizer()
    trainer = GRPOTrainer(
        model=build_model(tokenizer, 0),
        reward_funcs=vowel_reward,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": PROMPTS}),
        processing_class=tokenizer,
    )
    trainer.train()


if __name__ == "__main__":
    main()
