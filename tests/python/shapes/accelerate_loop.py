"""A custom training loop with Accelerate (no Trainer) that saves with
``accelerator.save_state`` and resumes itself, as Accelerate documents it:

    python accelerate_loop.py --output_dir OUT [--layout automatic|checkpoint-N]
                              [--steps 6] [--save_every 2]

--layout automatic: ProjectConfiguration(automatic_checkpoint_naming=True), saves in
OUT/checkpoints/checkpoint_<i>, resumes with ``accelerator.load_state()`` (the latest);
--layout checkpoint-N: ``save_state(OUT/checkpoint-<step>)``, resumes the highest one with
``load_state(path)``. The step counter is a registered object (custom_checkpoint_0.pkl).
Prints ``resumed from PATH at step N`` and ``done at step N``.
"""

import argparse
import os
import re
import time

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration


class Progress:
    def __init__(self):
        self.step = 0

    def state_dict(self):
        return {"step": self.step}

    def load_state_dict(self, state):
        self.step = state["step"]


def newest(out):
    names = [n for n in os.listdir(out) if re.fullmatch(r"checkpoint-[0-9]+", n)]
    names.sort(key=lambda n: int(n[11:]))
    return os.path.join(out, names[-1]) if names else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--layout", choices=["automatic", "checkpoint-N"], default="automatic")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--save_every", type=int, default=2)
    opts = parser.parse_args()
    automatic = opts.layout == "automatic"
    os.makedirs(opts.output_dir, exist_ok=True)
    config = ProjectConfiguration(
        project_dir=opts.output_dir, automatic_checkpoint_naming=automatic
    )
    accelerator = Accelerator(cpu=True, project_config=config)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    progress = Progress()
    accelerator.register_for_checkpointing(progress)

    saved = os.path.join(opts.output_dir, "checkpoints")
    if automatic and os.path.isdir(saved) and os.listdir(saved):
        accelerator.load_state()
        # The next save's number: Accelerate refuses to save over an existing folder.
        done = [int(n.rpartition("_")[2]) for n in os.listdir(saved)]
        accelerator.project_configuration.iteration = max(done) + 1
        print(f"resumed from the latest in {saved} at step {progress.step}", flush=True)
    elif not automatic and newest(opts.output_dir):
        path = newest(opts.output_dir)
        accelerator.load_state(path)
        print(f"resumed from {path} at step {progress.step}", flush=True)

    data = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    while progress.step < opts.steps:
        loss = model(data).pow(2).mean()
        accelerator.backward(loss)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        progress.step += 1
        print(f"step {progress.step} loss {loss.item():.6f}", flush=True)
        if progress.step % opts.save_every == 0:
            if automatic:
                accelerator.save_state()
            else:
                accelerator.save_state(os.path.join(opts.output_dir, f"checkpoint-{progress.step}"))
            time.sleep(0.5)
    print(f"done at step {progress.step}", flush=True)


if __name__ == "__main__":
    main()
