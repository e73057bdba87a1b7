"""A tiny real transformers.Trainer (causal LM, built in code) for the callback tests.

    python [-m train_resume] tiny_trainer.py OUTPUT_DIR MAX_STEPS [--resume_from_checkpoint C]

It knows nothing of train-resume unless TINY_EXPLICIT_CALLBACK=1 (then it adds the
callback itself). It prints one JSON line: the callbacks it ran with, the live W&B
run id, the run's train_resume/ config keys and its tags.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
os.environ.setdefault("WANDB_MODE", "offline")

from datasets import Dataset  # noqa: E402
from tiny_grpo import PROMPTS, build_model, build_tokenizer  # noqa: E402
from transformers import Trainer, TrainingArguments  # noqa: E402


def main():
    out, max_steps = sys.argv[1], int(sys.argv[2])
    resume = sys.argv[4] if sys.argv[3:4] == ["--resume_from_checkpoint"] else None
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, 0)
    enc = tokenizer(PROMPTS, padding="max_length", max_length=12, truncation=True)
    data = Dataset.from_dict({"input_ids": enc["input_ids"], "labels": enc["input_ids"]})
    args = TrainingArguments(
        output_dir=out,
        max_steps=max_steps,
        save_steps=2,
        logging_steps=1,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        report_to=os.environ.get("TINY_REPORT_TO", "wandb").split(","),
        use_cpu=True,
        seed=0,
    )
    if os.environ.get("TINY_PREINIT_ID"):  # a run the user's own code started first
        import wandb

        wandb.init(id=os.environ["TINY_PREINIT_ID"], project="tiny")
    callbacks = []
    if os.environ.get("TINY_EXPLICIT_CALLBACK") == "1":
        from train_resume.callback import WandbResumeCallback

        callbacks.append(WandbResumeCallback())
    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=callbacks)
    trainer.train(resume_from_checkpoint=resume)
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb else None
    print(
        json.dumps(
            {
                "callbacks": [type(cb).__name__ for cb in trainer.callback_handler.callbacks],
                "run_id": run.id if run else None,
                "config": {
                    k: v for k, v in dict(run.config).items() if k.startswith("train_resume/")
                }
                if run
                else {},
                "tags": list(run.tags or ()) if run else [],
            }
        )
    )


if __name__ == "__main__":
    main()
