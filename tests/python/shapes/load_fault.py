"""Run a trainer script as ``python SCRIPT ARGS`` would, but the first time the
Trainer loads model weights from a checkpoint (``safetensors.torch.load_file``, what
``Trainer._load_from_checkpoint`` calls), raise the error KIND names instead: fault
injection for the failed-load tests (a real EIO cannot be had on demand).

    python load_fault.py KIND SCRIPT ARGS...

KIND: eio, estale, timeout (errors that may pass), rust-eio (an EIO as safetensors'
Rust code words it), permission, damaged (the checkpoint's own: a header that
cannot be read).
"""

import errno
import os
import runpy
import sys

import safetensors
import safetensors.torch


def error(kind, path):
    if kind in ("eio", "estale"):
        number = errno.EIO if kind == "eio" else errno.ESTALE
        return OSError(number, os.strerror(number), path)
    if kind == "timeout":
        return TimeoutError(f"reading {path}: timed out")
    if kind == "rust-eio":
        return safetensors.SafetensorError(
            f"Error while deserializing header: I/O error: {os.strerror(errno.EIO)} (os error 5)"
        )
    if kind == "permission":
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
    if kind == "damaged":
        return safetensors.SafetensorError("Error while deserializing header: HeaderTooLarge")
    raise SystemExit(f"load_fault.py: unknown KIND {kind}")


def main():
    kind, script = sys.argv[1], sys.argv[2]
    real = safetensors.torch.load_file
    raised = []

    def load_file(filename, *args, **kwargs):
        if not raised and "checkpoint-" in os.fspath(filename):
            raised.append(filename)
            raise error(kind, os.fspath(filename))
        return real(filename, *args, **kwargs)

    safetensors.torch.load_file = load_file
    sys.argv = sys.argv[2:]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
