"""The one line every Python part of train-resume writes: ``train-resume: MESSAGE`` on
stderr, flushed at once (a job's processes interleave their lines; the bash library
writes the same prefix). Standard library only: the bootstrap imports it."""

import os
import sys

PREFIX = "train-resume: "


def log(message):
    """Write one ``train-resume: MESSAGE`` line on stderr."""
    print(f"{PREFIX}{message}", file=sys.stderr, flush=True)


def where():
    """`` (rank N)`` in a process of a job with several ranks (RANK set), else ''."""
    rank = os.environ.get("RANK")
    return f" (rank {rank})" if rank is not None else ""
