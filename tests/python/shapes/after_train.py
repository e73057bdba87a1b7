"""causal_lm.py, then one line after ``trainer.train()``: the preemption tests check
that this line never runs when training stopped on a signal.

    python after_train.py --output_dir OUT [--max_steps N] [--save_steps N]
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from causal_lm import main  # noqa: E402

RANK = os.environ.get("RANK", "0")
try:
    main()
except SystemExit as stop:
    print(f"rank {RANK} raised SystemExit({stop.code})", flush=True)
    raise
print(f"after trainer.train() on rank {RANK}", flush=True)
