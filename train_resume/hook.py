"""The import hook: give every transformers Trainer of this process the callback.

install() patches Trainer at once when transformers.trainer is already imported,
else only once someone else imports it; importing this module imports neither
transformers nor wandb.
"""

import importlib.abc
import sys

from train_resume import callback as _callback


def _patch(trainer_cls):
    """Make every instance of trainer_cls (and subclasses) carry the callback."""
    if getattr(trainer_cls.__init__, "_train_resume", False):
        return
    original = trainer_cls.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        callback = getattr(_callback, _callback.NAME)
        if not any(type(cb).__name__ == _callback.NAME for cb in self.callback_handler.callbacks):
            self.add_callback(callback)

    __init__._train_resume = True
    trainer_cls.__init__ = __init__


class _Hook(importlib.abc.MetaPathFinder):
    """Patch transformers.Trainer right after transformers.trainer is imported."""

    def find_spec(self, name, path=None, target=None):
        if name != "transformers.trainer":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module.Trainer)

        spec.loader.exec_module = exec_and_patch
        return spec


def install():
    """Give every transformers Trainer of this process a WandbResumeCallback."""
    if "transformers.trainer" in sys.modules:
        _patch(sys.modules["transformers.trainer"].Trainer)
    elif not any(isinstance(f, _Hook) for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook())
