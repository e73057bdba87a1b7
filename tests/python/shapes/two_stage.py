"""A two-stage script that knows nothing of train-resume: a short first stage on its own
output dir (OUT/stage1 by default), then the main Trainer on OUT, both bare ``train()``.

    python two_stage.py --output_dir OUT [--stage1_dir DIR] [--max_steps 6] [--save_steps 2]
"""

import argparse
import os

from causal_lm import tiny_args, tiny_data  # the plain script beside this one
from tiny_grpo import build_model, build_tokenizer
from transformers import Trainer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--stage1_dir")
    parser.add_argument("--max_steps", type=int, default=6)
    parser.add_argument("--save_steps", type=int, default=2)
    opts = parser.parse_args()
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, 0)
    data = tiny_data(tokenizer)
    stage1 = opts.stage1_dir or os.path.join(opts.output_dir, "stage1")
    Trainer(model=model, args=tiny_args(stage1, 2, 2), train_dataset=data).train()
    main_args = tiny_args(opts.output_dir, opts.max_steps, opts.save_steps)
    Trainer(model=model, args=main_args, train_dataset=data).train()


if __name__ == "__main__":
    main()
