"""train-resume's Python side: the hand-off shim and the trainer callback.

The resume decision itself lives in ``lib/wandb_resume.sh`` (bash); Python only
reads what it exported: TRAIN_RESUME_CHECKPOINT, TRAIN_RESUME_RUN_ID_SOURCE,
WANDB_RUN_ID and WANDB_RESUME.
"""

__version__ = "0.1.0"
