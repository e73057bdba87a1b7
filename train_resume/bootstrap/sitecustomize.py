"""train-resume's bootstrap, run by Python at start-up (see train_resume/bootstrap).

It is on PYTHONPATH only while a train-resume decision is in force. It installs the
hand-off (train_resume.hook.activate: an import hook; transformers is patched only
when something imports it) unless TRAIN_RESUME_HOOK=0, then hands over to the
``sitecustomize`` this one hides, the next one on sys.path that is not another copy
of ours: it runs as Python would have run it, under the name ``sitecustomize``.
Standard library only; a failure here never stops the process (one warning line on
stderr).
"""

import os
import sys


def _activate():
    if os.environ.get("TRAIN_RESUME_HOOK", "1") == "0":
        return
    try:
        from train_resume.hook import activate
    except ImportError as exc:
        print(
            f"train-resume: ⚠️ no hand-off in {sys.executable}: cannot import train_resume ({exc})",
            file=sys.stderr,
            flush=True,
        )
        return
    activate()


def _ours(entry, here):
    """True for a sys.path entry that is this folder, or another copy of it (any
    train_resume/bootstrap folder: a clone's and an install's may both be on the path)."""
    entry = os.path.abspath(entry or os.curdir)
    tail = os.path.join("train_resume", "bootstrap")
    return entry == here or entry.endswith(os.sep + tail) or os.path.realpath(entry) == here


def _chain():
    """Run the next sitecustomize on sys.path that is not one of ours, if any."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.realpath(__file__))
    path = [p for p in sys.path if not _ours(p, here)]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)  # its errors are reported by site, as they would be


try:
    _activate()
except Exception as exc:  # never break a process over the hand-off
    print(f"train-resume: ⚠️ the hand-off could not be installed: {exc!r}", file=sys.stderr)
_chain()
