"""The output-dir and resume logic of HF's example scripts (run_clm.py of transformers 4.x
and its many forks), copied faithfully, around a tiny causal LM built in code:

- a non-empty output dir without a checkpoint-N is refused ("Output directory ... already
  exists and is not empty"), unless --overwrite_output_dir;
- otherwise get_last_checkpoint(output_dir) (the highest checkpoint-N folder, no content
  check) is passed to trainer.train(resume_from_checkpoint=...) by the script itself,
  unless --resume_from_checkpoint is given.

transformers 5.x dropped overwrite_output_dir from TrainingArguments (and this block from
its own run_clm.py); a fork that still runs declares it among its own arguments, as here.

    python run_clm_logic.py --output_dir OUT --do_train --max_steps 6 --save_steps 2
                            [--overwrite_output_dir] [--resume_from_checkpoint PATH]
"""

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
os.environ.setdefault("WANDB_MODE", "offline")

from datasets import Dataset  # noqa: E402
from tiny_grpo import PROMPTS, build_model, build_tokenizer  # noqa: E402
from transformers import HfArgumentParser, Trainer, TrainingArguments  # noqa: E402
from transformers.trainer_utils import get_last_checkpoint  # noqa: E402

logger = logging.getLogger(__name__)


@dataclass
class ScriptArguments:
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Overwrite the content of the output directory."}
    )


def main():
    parser = HfArgumentParser((ScriptArguments, TrainingArguments))
    script_args, training_args = parser.parse_args_into_dataclasses()
    logging.basicConfig(level=logging.INFO)

    # Detecting last checkpoint (as run_clm.py of transformers 4.x).
    last_checkpoint = None
    if (
        os.path.isdir(training_args.output_dir)
        and training_args.do_train
        and not script_args.overwrite_output_dir
    ):
        last_checkpoint = get_last_checkpoint(training_args.output_dir)
        if last_checkpoint is None and len(os.listdir(training_args.output_dir)) > 0:
            raise ValueError(
                f"Output directory ({training_args.output_dir}) already exists and is not empty. "
                "Use --overwrite_output_dir to overcome."
            )
        elif last_checkpoint is not None and training_args.resume_from_checkpoint is None:
            logger.info(
                f"Checkpoint detected, resuming training at {last_checkpoint}. To avoid this "
                "behavior, change the `--output_dir` or add `--overwrite_output_dir` to train "
                "from scratch."
            )

    tokenizer = build_tokenizer()
    model = build_model(tokenizer, training_args.seed)
    enc = tokenizer(PROMPTS, padding="max_length", max_length=12, truncation=True)
    data = Dataset.from_dict({"input_ids": enc["input_ids"], "labels": enc["input_ids"]})
    trainer = Trainer(model=model, args=training_args, train_dataset=data)

    # Training (as run_clm.py of transformers 4.x).
    if training_args.do_train:
        checkpoint = None
        if training_args.resume_from_checkpoint is not None:
            checkpoint = training_args.resume_from_checkpoint
        elif last_checkpoint is not None:
            checkpoint = last_checkpoint
        trainer.train(resume_from_checkpoint=checkpoint)


if __name__ == "__main__":
    main()
