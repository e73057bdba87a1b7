"""A plain transformers Trainer script (tiny causal LM, built in code) that knows
nothing of train-resume: it calls bare ``trainer.train()``.

    python causal_lm.py --output_dir OUT [--max_steps 6] [--save_steps 2]
                        [--resume false|true|bypass|PATH]

--resume is for the hand-off tests only: ``false`` / ``true`` call
``train(resume_from_checkpoint=False / True)``, ``bypass`` uses a Trainer subclass whose
train() goes around Trainer.train, a PATH is passed to train() as given.
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


class BypassTrainer(Trainer):
    """Trains without going through Trainer.train (as some custom loops do)."""

    def train(self, *args, **kwargs):
        return self._inner_training_loop(args=self.args)


def tiny_data(tokenizer):
    """The prompts as a causal LM dataset (labels = inputs)."""
    enc = tokenizer(PROMPTS, padding="max_length", max_length=12, truncation=True)
    return Dataset.from_dict({"input_ids": enc["input_ids"], "labels": enc["input_ids"]})


def tiny_args(output_dir, max_steps, save_steps, **extra):
    """The TrainingArguments of these shapes: CPU, W&B, a log row per step (and EXTRA)."""
    return TrainingArguments(
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
        **extra,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--max_steps", type=int, default=6)
    parser.add_argument("--save_steps", type=int, default=2)
    parser.add_argument("--resume")
    opts = parser.parse_args()
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, 0)
    args = tiny_args(opts.output_dir, opts.max_steps, opts.save_steps)
    cls = BypassTrainer if opts.resume == "bypass" else Trainer
    trainer = cls(model=model, args=args, train_dataset=tiny_data(tokenizer))
    if opts.resume in (None, "bypass"):
        trainer.train()
    elif opts.resume in ("false", "true"):
        trainer.train(resume_from_checkpoint=opts.resume == "true")
    else:
        trainer.train(resume_from_checkpoint=opts.resume)


if __name__ == "__main__":
    main()
