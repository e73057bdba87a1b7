"""A two-stage script that knows nothing of train-resume: a short first stage on its own
output dir (OUT/stage1 by default), then the main Trainer on OUT, both bare ``train()``.

    python two_stage.py --output_dir OUT [--stage1_dir DIR] [--max_steps 6] [--save_steps 2]
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
os.environ.setdefault("WANDB_MODE", "offline")

from datasets import Dataset  # noqa: E402
from tiny_grpo import PROMPTS, build_model, build_tokenizer  # noqa: E402
from transformers import Trainer, TrainingArguments  # noqa: E402


def trainer_on(output_dir, model, data, max_steps, save_steps):
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=max_steps,
        save_steps=save_steps,
        logging_steps=1,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        report_to=["wandb"],
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
    )
    return Trainer(model=model, args=args, train_dataset=data)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--stage1_dir")
    parser.add_argument("--max_steps", type=int, default=6)
    parser.add_argument("--save_steps", type=int, default=2)
    opts = parser.parse_args()
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, 0)
    enc = tokenizer(PROMPTS, padding="max_length", max_length=12, truncation=True)
    data = Dataset.from_dict({"input_ids": enc["input_ids"], "labels": enc["input_ids"]})
    stage1 = opts.stage1_dir or os.path.join(opts.output_dir, "stage1")
    trainer_on(stage1, model, data, 2, 2).train()
    trainer_on(opts.output_dir, model, data, opts.max_steps, opts.save_steps).train()


if __name__ == "__main__":
    main()
