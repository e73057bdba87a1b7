"""A real trainer that stops in the middle of one save until it is killed: the tests of
"saved means saved by every rank" (tests/python/test_job.py) kill it there.

    [torchrun --nproc_per_node 2] python save_stall.py --output_dir OUT --stall_step N
        [--stall_rank R] [--grpo] [--max_steps 6] [--save_steps 2]

Default: a transformers Trainer (the tiny causal LM of causal_lm.py) whose rank R (1),
in the save of step N, waits inside _save_checkpoint before it writes its own file
(rng_state_<R>.pth: at the start of _save_rng_state, past the collectives of the save),
while the other ranks go on: rank 0 writes the whole checkpoint, trainer_state.json
last, and then waits for the others.
--grpo: TRL's GRPOTrainer (tiny_grpo.py's model, adaptive entropy on), one process;
the wait comes after the Trainer's own save (trainer_state.json written) and before
GRPOTrainer writes entropy_ctrl_state.json.
It writes OUT/stalled (the rank) when it starts waiting. --stall_step 0: no wait.
"""

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "examples"))
os.environ.setdefault("WANDB_MODE", "offline")

from datasets import Dataset  # noqa: E402
from tiny_grpo import PROMPTS, build_model, build_tokenizer, vowel_reward  # noqa: E402
from transformers import Trainer, TrainingArguments  # noqa: E402


def stall(trainer, opts):
    """Wait until killed, when this is the rank and the step to stall at."""
    if trainer.state.global_step == opts.stall_step and trainer.args.process_index == opts.rank:
        Path(opts.output_dir, "stalled").write_text(f"{opts.rank}\n")
        while True:
            time.sleep(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--max_steps", type=int, default=6)
    parser.add_argument("--save_steps", type=int, default=2)
    parser.add_argument("--stall_step", type=int, required=True)
    parser.add_argument("--stall_rank", dest="rank", type=int, default=1)
    parser.add_argument("--grpo", action="store_true")
    opts = parser.parse_args()
    common = dict(
        output_dir=opts.output_dir,
        max_steps=opts.max_steps,
        save_steps=opts.save_steps,
        logging_steps=1,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        report_to=["wandb"],
        use_cpu=True,
        seed=0,
    )
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, 0)
    if not opts.grpo:

        class StallingTrainer(Trainer):
            def _save_rng_state(self, output_dir):
                stall(self, opts)  # before this rank's own file
                super()._save_rng_state(output_dir)

        enc = tokenizer(PROMPTS, padding="max_length", max_length=12, truncation=True)
        data = Dataset.from_dict({"input_ids": enc["input_ids"], "labels": enc["input_ids"]})
        trainer = StallingTrainer(model=model, args=TrainingArguments(**common), train_dataset=data)
    else:
        from trl import GRPOConfig, GRPOTrainer

        class AfterTrainerSave(Trainer):
            """Between GRPOTrainer and Trainer in the MRO: GRPOTrainer's
            super()._save_checkpoint lands here, after the Trainer's whole save."""

            def _save_checkpoint(self, model, trial):
                super()._save_checkpoint(model, trial)
                stall(self, opts)  # before GRPOTrainer's entropy_ctrl_state.json

        class StallingGRPOTrainer(GRPOTrainer, AfterTrainerSave):
            pass

        opts.rank = 0
        args = GRPOConfig(
            **common,
            num_generations=2,
            max_completion_length=8,
            bf16=False,
            use_adaptive_entropy=True,
        )
        trainer = StallingGRPOTrainer(
            model=model,
            reward_funcs=vowel_reward,
            args=args,
            train_dataset=Dataset.from_dict({"prompt": PROMPTS}),
            processing_class=tokenizer,
        )
    trainer.train()


if __name__ == "__main__":
    main()
