#!/bin/sh
# A run script as many jobs have: it sets PYTHONPATH for its own modules (overwriting
# what was there, train-resume's bootstrap included), then calls python (PYTHON, else
# python3) on the plain transformers script.
export PYTHONPATH=/somewhere/else
exec "${PYTHON:-python3}" "$(dirname "$0")/causal_lm.py" "$@"
