#!/bin/sh
# A wrapper as users write them: it calls python (PYTHON, else python3) on the plain
# transformers script with the wrapper's arguments.
exec "${PYTHON:-python3}" "$(dirname "$0")/causal_lm.py" "$@"
