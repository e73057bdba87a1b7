"""The hand-off: make every transformers Trainer of this process carry out the decision.

activate() is the one place that decides how the hand-off happens; the bootstrap
(train_resume/bootstrap/sitecustomize.py, in every Python process of a job) and
``python -m train_resume`` both call it. It installs an import hook that patches
``transformers.Trainer`` once ``transformers.trainer`` is imported (at once when it
already is). Importing this module imports neither transformers nor wandb. The patched
Trainer:

- carries a WandbResumeCallback (train_resume.callback), unless it has one, or
  TRAIN_RESUME_CALLBACK=0 / ``python -m train_resume --no-callback``;
- resumes: ``train()`` with ``resume_from_checkpoint`` None (or True: "the latest")
  gets TRAIN_RESUME_CHECKPOINT. A path given by the script wins (one line when it
  differs from the decision); False is respected, with a warning. Only the first
  train() of a process carries the decision;
- has a safety net that runs first at train begin, before W&B starts: when
  TRAIN_RESUME_CHECKPOINT is set and training begins at global_step 0 (it did not
  resume, whatever the reason), it raises FreshStartError, so that a resumed W&B run
  never gets a fresh trajectory. TRAIN_RESUME_ALLOW_FRESH_START=1 makes it a warning;
- records a failed load: when train(resume_from_checkpoint=X) raises while loading X,
  it writes ``<dir of X>/.train-resume/failed/<name of X>`` (one line ``Type: message``;
  the bash side passes that checkpoint over next time) and re-raises.
"""

import os
import sys

# Trainer (and TrainerState) methods that read a checkpoint being resumed: an
# exception raised inside one of them is a failed load of that checkpoint.
LOAD_FUNCTIONS = frozenset(
    {
        "_load_from_checkpoint",
        "load_from_json",
        "_load_callback_state",
        "_load_optimizer_and_scheduler",
        "_load_scaler",
        "_load_rng_state",
        "deepspeed_load_checkpoint",
    }
)
_settings = {"callback": True}
# Once a Trainer of this process has begun from the checkpoint (or was allowed to start
# fresh), the decision is carried out: later Trainers are left alone.
_done = {"settled": False}


class FreshStartError(RuntimeError):
    """Training was about to start at step 0 while the job resumes from a checkpoint."""


def _log(message):
    print(f"train-resume: {message}", file=sys.stderr, flush=True)


def _where():
    rank = os.environ.get("RANK")
    return f" (rank {rank})" if rank is not None else ""


def _same_path(a, b):
    return os.path.realpath(os.fspath(a)) == os.path.realpath(os.fspath(b))


def _resume_arg(trainer, value):
    """The resume_from_checkpoint that train() runs with; logs what was decided."""
    checkpoint = os.environ.get("TRAIN_RESUME_CHECKPOINT")
    if not checkpoint or _done["settled"]:
        return value
    if value is False:
        trainer._train_resume_how = "the script called train(resume_from_checkpoint=False)"
        _log(
            f"⚠️ the script refuses a resume (train(resume_from_checkpoint=False)){_where()}, "
            f"although this job resumes from {checkpoint}: not resuming"
        )
        return value
    if value is None or value is True:
        run_id = os.environ.get("WANDB_RUN_ID", "(new)")
        mode = os.environ.get("WANDB_RESUME")
        _log(
            f"▶ handing off{_where()}: resume from {checkpoint}, W&B run {run_id}, "
            f"WANDB_RESUME={mode}"
        )
        trainer._train_resume_how = f"the trainer did not load {checkpoint}"
        return checkpoint
    trainer._train_resume_how = f"the script resumes from {os.fspath(value)} itself"
    if not _same_path(value, checkpoint):
        _log(
            f"⚠️ the script's resume_from_checkpoint {os.fspath(value)!r} differs from the "
            f"decision {checkpoint!r}; keeping the script's{_where()}"
        )
    return value


def _failed_load(exc):
    """True when EXC was raised inside one of LOAD_FUNCTIONS (and is not about memory)."""
    if isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__:
        return False
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name in LOAD_FUNCTIONS:
            return True
        tb = tb.tb_next
    return False


def _record_failed_load(checkpoint, exc):
    """Write <dir of CHECKPOINT>/.train-resume/failed/<name>: one line `Type: message`."""
    checkpoint = os.path.abspath(os.fspath(checkpoint)).rstrip(os.sep)
    parent, name = os.path.split(checkpoint)
    folder = os.path.join(parent, ".train-resume", "failed")
    message = " ".join(str(exc).split()) or "(no message)"
    line = f"{type(exc).__name__}: {message}"
    path = os.path.join(folder, name)
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(line + "\n")
        os.replace(tmp, path)
    except OSError as err:
        _log(f"⚠️ could not record the failed load of {checkpoint} in {path}: {err}")
        return
    _log(f"❌ the trainer failed to load {checkpoint}{_where()}: {line} (recorded in {path})")


def _check_start(trainer, state):
    """The safety net, at train begin: refuse to start at step 0 while resuming."""
    checkpoint = os.environ.get("TRAIN_RESUME_CHECKPOINT")
    if not checkpoint or _done["settled"]:
        return
    if state.global_step > 0:
        _done["settled"] = True
        return
    how = getattr(trainer, "_train_resume_how", None) or (
        "Trainer.train() was not called (a subclass or the script went around it), so "
        f"{checkpoint} was never loaded"
    )
    run_id = os.environ.get("WANDB_RUN_ID", "(none)")
    if os.environ.get("TRAIN_RESUME_ALLOW_FRESH_START") == "1":
        _done["settled"] = True
        _log(
            f"⚠️ training starts at step 0{_where()} although this job resumes from "
            f"{checkpoint} ({how}); TRAIN_RESUME_ALLOW_FRESH_START=1: going on, and W&B "
            f"run {run_id} gets a fresh trajectory"
        )
        return
    message = (
        f"❌ training would start at step 0{_where()}, but this job resumes from "
        f"{checkpoint} (W&B run {run_id}, WANDB_RESUME={os.environ.get('WANDB_RESUME')}); "
        f"likely cause: {how}. Stopped before the first step, so that the resumed W&B run "
        "is not overwritten by a fresh trajectory. To start fresh anyway: "
        "TRAIN_RESUME_ALLOW_FRESH_START=1; for a new run: train-resume --checkpoint none"
    )
    _log(message)
    raise FreshStartError(f"train-resume: {message}")


def _build_guard():
    from transformers.trainer_callback import TrainerCallback

    class TrainResumeGuard(TrainerCallback):
        """The safety net; first of the Trainer's callbacks, so it runs before W&B's."""

        def __init__(self, trainer):
            self.trainer = trainer

        def on_train_begin(self, args, state, control, **kwargs):
            _check_start(self.trainer, state)

    return TrainResumeGuard


def _patch(trainer_cls):
    """Patch trainer_cls (transformers.Trainer, so its subclasses too), once."""
    if getattr(trainer_cls.__init__, "_train_resume", False):
        return
    from train_resume import callback as _callback

    guard_cls = _build_guard()
    original_init, original_train = trainer_cls.__init__, trainer_cls.train

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        callbacks = self.callback_handler.callbacks
        if not any(isinstance(cb, guard_cls) for cb in callbacks):
            callbacks.insert(0, guard_cls(self))
        wanted = _settings["callback"] and os.environ.get("TRAIN_RESUME_CALLBACK", "1") != "0"
        if wanted and not any(type(cb).__name__ == _callback.NAME for cb in callbacks):
            self.add_callback(getattr(_callback, _callback.NAME))

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        resume_from_checkpoint = _resume_arg(self, resume_from_checkpoint)
        try:
            return original_train(self, resume_from_checkpoint, *args, **kwargs)
        except Exception as exc:
            if isinstance(resume_from_checkpoint, (str, os.PathLike)) and _failed_load(exc):
                _record_failed_load(resume_from_checkpoint, exc)
            raise

    __init__._train_resume = train._train_resume = True
    __init__.__wrapped__, train.__wrapped__ = original_init, original_train
    __init__.__doc__, train.__doc__ = original_init.__doc__, original_train.__doc__
    trainer_cls.__init__, trainer_cls.train = __init__, train


class _Hook:
    """A meta path finder: patch transformers.Trainer right after transformers.trainer
    is imported (it finds nothing itself)."""

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


def activate(callback=None):
    """Install the hand-off in this process (idempotent). callback=False: no
    WandbResumeCallback (None leaves the setting as it is)."""
    from train_resume import job

    job.register()  # this process is one of the job's: it keeps the output dir's lock
    if callback is not None:
        _settings["callback"] = bool(callback)
    if "transformers.trainer" in sys.modules:
        _patch(sys.modules["transformers.trainer"].Trainer)
    elif not any(isinstance(f, _Hook) for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook())


def install():
    """The hand-off with the callback (kept for callers of earlier versions)."""
    activate(callback=True)
