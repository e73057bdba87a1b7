"""train-resume's Python side: the hand-off shim and the trainer callback.

The resume decision itself lives in ``lib/wandb_resume.sh`` (bash); Python only
reads what it exported: TRAIN_RESUME_CHECKPOINT, TRAIN_RESUME_RUN_ID_SOURCE,
WANDB_RUN_ID and WANDB_RESUME.
"""

import os
import sys

__version__ = "0.1.0"
# The one line every Python part writes (log): ``train-resume: MESSAGE`` on stderr,
# flushed at once (a job's processes interleave their lines; the bash library writes
# the same prefix). Here, in the package the bootstrap imports anyway: no module more.
PREFIX = "train-resume: "


def log(message):
    """Write one ``train-resume: MESSAGE`` line on stderr."""
    print(f"{PREFIX}{message}", file=sys.stderr, flush=True)


def where():
    """`` (rank N)`` in a process of a job with several ranks (RANK set), else ''."""
    rank = os.environ.get("RANK")
    return f" (rank {rank})" if rank is not None else ""
