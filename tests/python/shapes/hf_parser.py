"""A TRL GRPO script that parses GRPOConfig with HfArgumentParser, then calls bare
``trainer.train()`` (its --resume_from_checkpoint, if any, is never read):

    python hf_parser.py --output_dir OUT --max_steps 6 --save_steps 2
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
os.environ.setdefault("WANDB_MODE", "offline")

from datasets import Dataset  # noqa: E402
from tiny_grpo import PROMPTS, build_model, build_tokenizer, vowel_reward  # noqa: E402
from transformers import HfArgumentParser  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402


def main():
    parser = HfArgumentParser(GRPOConfig)
    parser.set_defaults(
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
    (args,) = parser.parse_args_into_dataclasses()
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
