"""WandbResumeCallback: the checkpoint carries its own W&B run id.

At every save the live run id lands in trainer_state.json as
``stateful_callbacks.WandbResumeCallback.args.wandb_run_id`` (the bash library's
"trainer-state" source). On train begin (main process, W&B active) it checks the live
run against the launcher's WANDB_RUN_ID and records the resume in the run's config
under ``train_resume/`` and with a ``resumed`` tag.

On SIGUSR1 or SIGTERM (a scheduler's warning before preemption or time-out) it asks
the Trainer to save a checkpoint at the end of the current step and stop, so the next
start resumes from that very step.

Importing this module imports neither transformers nor wandb; the class is built
on first access. train_resume.hook gives every Trainer one.
"""

import os
import signal
import sys
import threading

NAME = "WandbResumeCallback"
_CLASS = None


def _log(message):
    print(f"train-resume: {message}", file=sys.stderr, flush=True)


def _live_run():
    """The active wandb run, or None (without importing wandb)."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    return run if run is not None and not getattr(run, "disabled", False) else None


def _build():
    from transformers.trainer_callback import ExportableState, TrainerCallback

    class WandbResumeCallback(TrainerCallback, ExportableState):
        """Stores the live W&B run id in every checkpoint; records resumes in W&B."""

        def __init__(self, wandb_run_id=None, wandb_project=None, resume_count=0):
            self.wandb_run_id = wandb_run_id
            self.wandb_project = wandb_project
            self.resume_count = resume_count

        def state(self):
            run = _live_run()
            if run is not None:
                self.wandb_run_id, self.wandb_project = run.id, run.project
            return {
                "args": {"wandb_run_id": self.wandb_run_id, "wandb_project": self.wandb_project},
                "attributes": {"resume_count": self.resume_count},
            }

        def _on_signal(self, signum, frame):
            self._stop_signal = signum

        def _watch_signals(self):
            """Turn the stop signals (TRAIN_RESUME_STOP_SIGNALS, default USR1,TERM) into
            a save at the end of the current step and a clean stop."""
            if threading.current_thread() is not threading.main_thread():
                return
            names = os.environ.get("TRAIN_RESUME_STOP_SIGNALS", "USR1,TERM")
            for name in filter(None, (n.strip().upper() for n in names.split(","))):
                sig = getattr(signal, name if name.startswith("SIG") else f"SIG{name}", None)
                if sig is not None:
                    signal.signal(sig, self._on_signal)

        def on_step_end(self, args, state, control, **kwargs):
            if getattr(self, "_stop_signal", None) is not None:
                if state.is_world_process_zero:
                    name = signal.Signals(self._stop_signal).name
                    _log(
                        f"⏸ {name}: saving checkpoint-{state.global_step} and stopping "
                        "(preempted; the next start resumes here)"
                    )
                control.should_save = True
                control.should_training_stop = True
            return control

        def on_train_begin(self, args, state, control, **kwargs):
            self._watch_signals()
            # Trainer saves state() under our name; a checkpoint made without us
            # has no slot for it yet.
            saved = state.stateful_callbacks.setdefault(NAME, self.state())
            checkpoint = os.environ.get("TRAIN_RESUME_CHECKPOINT")
            if checkpoint:
                previous = saved[-1] if isinstance(saved, list) else saved
                count = (previous.get("attributes") or {}).get("resume_count") or 0
                self.resume_count = int(count) + 1
            if not state.is_world_process_zero:
                return
            run = _live_run()
            if run is None:
                return
            expected = os.environ.get("WANDB_RUN_ID")
            if expected and run.id != expected:
                _log(
                    f"❌ the live W&B run is {run.id}, but WANDB_RUN_ID is {expected}: "
                    "this run does NOT continue the one train-resume chose"
                )
            meta = {"resumed": bool(checkpoint), "run_id": run.id}
            if checkpoint:
                meta.update(
                    checkpoint=checkpoint,
                    global_step_at_resume=state.global_step,
                    resume_count=self.resume_count,
                    run_id_source=os.environ.get("TRAIN_RESUME_RUN_ID_SOURCE"),
                )
            for key in ("SLURM_JOB_ID", "SLURM_RESTART_COUNT"):
                if key in os.environ:
                    meta[key.lower()] = os.environ[key]
            try:
                run.config.update(
                    {f"train_resume/{k}": v for k, v in meta.items()}, allow_val_change=True
                )
                if checkpoint and "resumed" not in (run.tags or ()):
                    run.tags = (*(run.tags or ()), "resumed")
            except Exception as exc:  # never break training over bookkeeping
                _log(f"⚠️ could not record the resume in W&B: {exc}")

    return WandbResumeCallback


def __getattr__(name):
    global _CLASS
    if name == NAME:
        if _CLASS is None:
            _CLASS = _build()
        return _CLASS
    raise AttributeError(name)
