"""train-resume's bootstrap: this folder holds a ``sitecustomize`` module.

While a decision is in force, ``bin/train-resume`` and ``wandb_resume::configure`` put
this folder first on ``PYTHONPATH``, so every Python process of the job (whatever
started it: python, torchrun, accelerate, deepspeed, the trl CLI, a shell script)
runs ``sitecustomize`` at start-up: it installs train_resume.hook, then runs the
``sitecustomize`` that would have run without us, if there is one.
"""

import os

DIR = os.path.dirname(os.path.abspath(__file__))
