"""causal_lm.py's Trainer (a tiny causal LM, bare ``trainer.train()``), ended in the
ways the end-record tests need (tests/python/test_ended.py).

    [torchrun --nproc_per_node 2] python ending.py --output_dir OUT [--max_steps 6]
        [--save_steps 2] [--early_stopping] [--signal_last_step self|supervisor]

--early_stopping: an eval set and transformers' EarlyStoppingCallback (patience 1, and
  a threshold no improvement passes), evaluated every save_steps with
  load_best_model_at_end: training stops itself at the second evaluation (step
  2 x save_steps), short of max_steps, and exits 0.
--signal_last_step: at the start of the last step (on_step_begin at max_steps - 1),
  rank 0 sends SIGUSR1 to itself (as `scancel -s USR1` sends it to a job step) or to
  the supervising shell (its pid in $SUPERVISOR: the `B:` form), then waits until
  train-resume's callback in this process has it: the signal lands during the last
  step, every time.
Prints "after trainer.train() on rank R" once train() has returned.
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from causal_lm import tiny_args, tiny_data  # noqa: E402
from tiny_grpo import build_model, build_tokenizer  # noqa: E402
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback  # noqa: E402

RANK = os.environ.get("RANK", "0")


class SignalAtLastStep(TrainerCallback):
    """SIGUSR1 to TARGET (self, or supervisor: $SUPERVISOR) at the start of the last step."""

    def __init__(self, trainer, target):
        self.trainer, self.target = trainer, target

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step != state.max_steps - 1 or not state.is_world_process_zero:
            return
        pid = os.getpid() if self.target == "self" else int(os.environ["SUPERVISOR"])
        os.kill(pid, signal.SIGUSR1)
        (ours,) = [
            cb
            for cb in self.trainer.callback_handler.callbacks
            if type(cb).__name__ == "WandbResumeCallback"
        ]
        deadline = time.monotonic() + 60
        while getattr(ours, "_stop_signal", None) is None:
            assert time.monotonic() < deadline, "train-resume's callback never got SIGUSR1"
            time.sleep(0.05)
        print(f"SIGUSR1 landed at the start of step {state.global_step + 1}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--max_steps", type=int, default=6)
    parser.add_argument("--save_steps", type=int, default=2)
    parser.add_argument("--early_stopping", action="store_true")
    parser.add_argument("--signal_last_step", choices=["self", "supervisor"])
    opts = parser.parse_args()
    tokenizer = build_tokenizer()
    data = tiny_data(tokenizer)
    callbacks, eval_data, extra = [], None, {}
    if opts.early_stopping:
        extra = dict(
            eval_strategy="steps",
            eval_steps=opts.save_steps,
            load_best_model_at_end=True,
            metric_for_best_model="eval_loss",
            greater_is_better=False,
        )
        callbacks.append(EarlyStoppingCallback(1, early_stopping_threshold=1e9))
        eval_data = data
    args = tiny_args(opts.output_dir, opts.max_steps, opts.save_steps, **extra)
    trainer = Trainer(
        model=build_model(tokenizer, 0),
        args=args,
        train_dataset=data,
        eval_dataset=eval_data,
        callbacks=callbacks,
    )
    if opts.signal_last_step:
        trainer.add_callback(SignalAtLastStep(trainer, opts.signal_last_step))
    trainer.train()
    print(f"after trainer.train() on rank {RANK}", flush=True)


if __name__ == "__main__":
    main()
