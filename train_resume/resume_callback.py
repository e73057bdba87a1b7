"""The WandbResumeCallback class (what train_resume.callback describes), built on
transformers' TrainerCallback: importing this module imports transformers, so
train_resume.callback imports it only on first access to the class (the bootstrap and
the hook stay light). Its steps, each a function of its own:

- the checkpoint's slot: ``state()`` (the live run id, project, entity, wandb_step);
- on train begin: watch the stop signals, count the resume, record it in W&B, continue
  the run's history (the replayed steps: dropped, logged again, or rewound);
- on a stop signal: save at the end of the step and stop (``_stop_at``), or nothing at
  the run's end; at train end, exit preempted (``_exit_preempted``) or record the end;
- on save: every rank has saved, then the save record.
"""

import os
import signal
import sys
import threading

from transformers.trainer_callback import ExportableState, TrainerCallback

from train_resume import callback as _records
from train_resume import log
from train_resume.hook import _distributed  # torch.distributed with several ranks, or None
from train_resume.wandb_records import GLOBAL_STEP


def _live_run():
    """The active wandb run, or None (without importing wandb)."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    return run if run is not None and not getattr(run, "disabled", False) else None


def _last_step(run, offset):
    """The run's _step of the last row logged so far, as the server numbers it."""
    try:
        nxt = max(int(run.step), int(getattr(run, "starting_step", 0) or 0))
    except Exception:  # a run mode without step counting ("shared")
        return None
    return offset + nxt - 1 if offset + nxt > 0 else None


def _logged_before(run):
    """(the highest train/global_step the run already holds, the server _step of this
    segment's local _step 0). Online W&B restores the resumed run's summary and
    numbers _step itself; offline, the earlier segments' run folders are read."""
    if not getattr(run, "offline", False):
        if not getattr(run, "resumed", False):
            return None, 0
        value = run.summary.get("train/global_step")
        return (int(value) if value is not None else None), 0
    from pathlib import Path

    from train_resume.wandb_records import earlier_segments

    folder = Path(run.sync_dir)
    logged, next_step, _count = earlier_segments(folder.parent, run.id, folder)
    return logged, next_step


class _Replay:
    """Drops the W&B rows of replayed steps: wraps wandb.log (what transformers' and
    TRL's loggers call) and the run's log until the first row past LOGGED, the highest
    train/global_step the run already holds. A row's step is its train/global_step,
    else the trainer's (W&B's step_sync would fill that in). The first row kept gets
    train/global_step when it has none (W&B has no earlier value in this segment to
    fill it in with); then the wrappers are removed."""

    def __init__(self, callback, logged):
        wandb = sys.modules["wandb"]
        self.callback, self.logged, self.dropped = callback, logged, 0
        self.run = wandb.run
        self.module_log = wandb.log
        self.original = self.run.log
        wandb.log = self.run.log = self.log

    def log(self, data=None, *args, **kwargs):
        step = self.callback._global_step
        if isinstance(data, dict):
            step = data.get(GLOBAL_STEP, step)
        try:
            replayed = int(step) <= self.logged
        except (TypeError, ValueError):
            replayed = False
        if replayed:
            self.dropped += 1
            return None
        if isinstance(data, dict) and GLOBAL_STEP not in data:
            data = {**data, GLOBAL_STEP: self.callback._global_step}
        self.restore()  # past the replay: W&B has the axis again from this row on
        return self.original(data, *args, **kwargs)

    def restore(self):
        wandb = sys.modules.get("wandb")
        if wandb is not None and wandb.log is self.log:
            wandb.log = self.module_log
        if self.run.__dict__.get("log") is self.log:
            del self.run.__dict__["log"]


def _agreed_signal(signum, args):
    """The stop signal, agreed on by every rank (the largest number any rank got), so
    that all ranks save and stop at the same step even when the signal reached only
    some of them. One tiny all-reduce per step, only with several ranks."""
    dist = _distributed()
    if dist is None:
        return signum
    import torch

    flag = torch.tensor([signum or 0], dtype=torch.int64, device=args.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item()) or None


def _short_name(signum):
    """USR1 for SIGUSR1: how the end record names a signal."""
    return signal.Signals(signum).name.removeprefix("SIG")


def _exit_preempted(signum, args, state):
    """End the process with 128+SIGNUM (the shell's status for that signal: USR1 138,
    TERM 143), once every rank is here: the checkpoint is saved, and no code after
    trainer.train() runs as if training had finished. SystemExit, not os._exit, so
    that atexit handlers still run. The live W&B run is finished here, before the
    barrier: a launcher (torchrun) stops the other ranks as soon as one has exited, and
    a rank still finishing its W&B run then would be cut short. After the barrier, the
    world process zero records the end (record_end)."""
    status = 128 + signum
    if state.is_world_process_zero:
        log(
            f"⏹ preempted ({signal.Signals(signum).name}): checkpoint-{state.global_step} "
            f"is saved; exiting with status {status} (not finished: the next start resumes)"
        )
    run = _live_run()
    if run is not None:
        try:
            run.finish(exit_code=status)
        except Exception as exc:  # never hide the preemption behind bookkeeping
            log(f"⚠️ could not finish the W&B run: {exc}")
    dist = _distributed()
    if dist is not None:
        dist.barrier()
    if state.is_world_process_zero:
        _records.record_end(
            args.output_dir,
            _records.SIGNAL,
            signal=_short_name(signum),
            step=state.global_step,
            max_steps=state.max_steps,
        )
    sys.stdout.flush()
    raise SystemExit(status)


def _how_it_ended(args, state, control):
    """Why training ended without a stop signal of ours (at train end): max_steps
    (global_step reached max_steps: TrainingArguments.max_steps), epochs (it ran its
    num_train_epochs, or the epoch loop ran out), should_training_stop (stopped before
    max_steps by control.should_training_stop: a callback's rule such as
    EarlyStoppingCallback's, or the trainer's own, an IterableDataset out of samples)."""
    if state.max_steps and state.global_step >= state.max_steps:
        return _records.MAX_STEPS if args.max_steps > 0 else _records.EPOCHS
    return _records.SHOULD_TRAINING_STOP if control.should_training_stop else _records.EPOCHS


def _stop_signals():
    """The signal numbers of TRAIN_RESUME_STOP_SIGNALS (unset: the shared definitions'
    STOP_SIGNALS, callback.DEFAULT_STOP_SIGNALS), names with or without SIG, any case;
    unknown names are left out."""
    names = os.environ.get("TRAIN_RESUME_STOP_SIGNALS") or _records.DEFAULT_STOP_SIGNALS
    found = []
    for name in filter(None, (n.strip().upper() for n in names.split(","))):
        sig = getattr(signal, name if name.startswith("SIG") else f"SIG{name}", None)
        if sig is not None:
            found.append(sig)
    return found


def _resume_meta(run, state, checkpoint, resume_count):
    """The config entries that record this start in the W&B run (train_resume/...)."""
    meta = {"resumed": bool(checkpoint), "run_id": run.id}
    if checkpoint:
        meta.update(
            checkpoint=checkpoint,
            global_step_at_resume=state.global_step,
            resume_count=resume_count,
            run_id_source=os.environ.get("TRAIN_RESUME_RUN_ID_SOURCE"),
        )
    for key in ("SLURM_JOB_ID", "SLURM_RESTART_COUNT"):
        if key in os.environ:
            meta[key.lower()] = os.environ[key]
    return meta


def _check_run_id(run):
    """Say so loudly when the live W&B run is not the one the launcher chose."""
    expected = os.environ.get("WANDB_RUN_ID")
    if expected and run.id != expected:
        log(
            f"❌ the live W&B run is {run.id}, but WANDB_RUN_ID is {expected}: "
            "this run does NOT continue the one train-resume chose"
        )


def _update_run(run, meta, tag):
    """Record META in the run's config (under train_resume/), and the TAG when given."""
    try:
        run.config.update({f"train_resume/{k}": v for k, v in meta.items()}, allow_val_change=True)
        if tag and tag not in (run.tags or ()):
            run.tags = (*(run.tags or ()), tag)
    except Exception as exc:  # never break training over bookkeeping
        log(f"⚠️ could not record the resume in W&B: {exc}")


class WandbResumeCallback(TrainerCallback, ExportableState):
    """Stores the live W&B run id in every checkpoint; records resumes in W&B."""

    def __init__(
        self,
        wandb_run_id=None,
        wandb_project=None,
        wandb_entity=None,
        wandb_step=None,
        resume_count=0,
    ):
        self.wandb_run_id = wandb_run_id
        self.wandb_project = wandb_project
        self.wandb_entity = wandb_entity
        self.wandb_step = wandb_step
        self.resume_count = resume_count
        self._step_offset = 0  # server _step of this segment's local _step 0
        self._global_step = 0
        self._replay = None
        self._stop_signal = None  # the stop signal this process got (its handler)
        self._stopped_by = None  # the agreed stop signal: saved, stopping, preempted
        self._late_signal = None  # a stop signal that landed at the run's end

    def state(self):
        run = _live_run()
        if run is not None:
            self.wandb_run_id, self.wandb_project = run.id, run.project
            self.wandb_entity = run.entity or None
            self.wandb_step = _last_step(run, self._step_offset)
        return {
            "args": {
                "wandb_run_id": self.wandb_run_id,
                "wandb_project": self.wandb_project,
                "wandb_entity": self.wandb_entity,
                "wandb_step": self.wandb_step,
            },
            "attributes": {"resume_count": self.resume_count},
        }

    def on_save(self, args, state, control, **kwargs):
        # Saved means saved by every rank (DeepSpeed/FSDP shards, the rank's own RNG
        # state, a subclass's extras such as TRL's entropy_ctrl_state.json): _save_
        # checkpoint has no barrier after them, so the ranks meet here first.
        dist = _distributed()
        if dist is not None:
            dist.barrier()
        if args.should_save:
            _records._record_saves(args.output_dir, state.global_step)

    def on_step_begin(self, args, state, control, **kwargs):
        self._global_step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        self._global_step = state.global_step

    def on_train_end(self, args, state, control, **kwargs):
        if self._replay is not None:
            self._replay.restore()
        if self._stopped_by is not None:
            _exit_preempted(self._stopped_by, args, state)
        if not state.is_world_process_zero:
            return
        fields = {}
        late = self._late_signal or self._stop_signal
        if late is not None:
            fields["signal"] = _short_name(late)
        fields.update(step=state.global_step, max_steps=state.max_steps)
        _records.record_end(args.output_dir, _how_it_ended(args, state, control), **fields)

    def _on_signal(self, signum, frame):
        self._stop_signal = signum

    def _watch_signals(self):
        """Turn the stop signals (_stop_signals) into a save at the end of the current
        step and a clean stop."""
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            signals = _stop_signals()
        except OSError as err:  # no shared definitions: said, and training goes on
            log(f"⚠️ no stop signal is watched (TRAIN_RESUME_STOP_SIGNALS is unset): {err}")
            return
        for sig in signals:
            signal.signal(sig, self._on_signal)

    def on_step_end(self, args, state, control, **kwargs):
        signum = _agreed_signal(self._stop_signal, args)
        if signum is None:
            return control
        if state.global_step >= state.max_steps or control.should_training_stop:
            self._at_the_end(signum, state)
        else:
            self._stop_at(signum, state, control)
        return control

    def _at_the_end(self, signum, state):
        """A stop signal at the run's end (its last step; or another rule, run before
        us, stops it here): training ends now anyway. Finished, not preempted: a requeue
        would resume the end and train a step past it."""
        if self._late_signal is None and state.is_world_process_zero:
            log(
                f"⏸ {signal.Signals(signum).name} at step {state.global_step}, where "
                "training ends anyway: finished, not preempted (exit 0)"
            )
        self._late_signal = signum

    def _stop_at(self, signum, state, control):
        """Save a checkpoint at the end of this step and stop: preempted."""
        self._stopped_by = signum
        if state.is_world_process_zero:
            log(
                f"⏸ {signal.Signals(signum).name}: saving checkpoint-{state.global_step} "
                "and stopping (preempted; the next start resumes here)"
            )
        control.should_save = True
        control.should_training_stop = True

    def on_train_begin(self, args, state, control, **kwargs):
        self._watch_signals()
        checkpoint = os.environ.get("TRAIN_RESUME_CHECKPOINT")
        self._count_resume(state, checkpoint)
        if not state.is_world_process_zero:
            return
        run = _live_run()
        if run is None:
            return
        _check_run_id(run)
        meta = _resume_meta(run, state, checkpoint, self.resume_count)
        if checkpoint:
            meta.update(self._continue_history(run, state.global_step))
        _update_run(run, meta, "resumed" if checkpoint else None)

    def _count_resume(self, state, checkpoint):
        """resume_count: one more than the checkpoint's when resuming. Trainer saves
        state() under our name; a checkpoint made without us has no slot for it yet."""
        saved = state.stateful_callbacks.setdefault(_records.NAME, self.state())
        if checkpoint:
            previous = saved[-1] if isinstance(saved, list) else saved
            count = (previous.get("attributes") or {}).get("resume_count") or 0
            self.resume_count = int(count) + 1

    def _continue_history(self, run, resume_step):
        """On a resume: where this segment's rows go in the run's history, and the
        replayed steps (those after the checkpoint that the run already holds).
        Returns the config entries to record."""
        self._global_step = resume_step
        rewind = os.environ.get("WANDB_RESUME_FROM")
        if rewind:
            log(f"⏪ W&B rewinds the run to {rewind}: no replayed step is kept twice")
            return {"rewound_to": rewind}
        try:
            logged, offset = _logged_before(run)
        except Exception as exc:  # never break training over bookkeeping
            log(f"⚠️ could not read the earlier W&B segments: {exc}")
            logged, offset = None, 0
        self._step_offset = offset
        if logged is None or logged <= resume_step:
            return {}
        self._replayed(resume_step + 1, logged)
        return {"replayed_steps": [resume_step + 1, logged]}

    def _replayed(self, first, logged):
        """Steps FIRST..LOGGED replay steps the run already holds: drop their rows
        (_Replay), or log them again with TRAIN_RESUME_REPLAYED=log."""
        what = f"global steps {first}-{logged}"
        if os.environ.get("TRAIN_RESUME_REPLAYED", "drop") == "log":
            log(
                f"↩ {what} replay steps the run already holds; "
                "logged again (TRAIN_RESUME_REPLAYED=log)"
            )
            return
        log(
            f"↩ {what} replay steps the run already holds: their rows are not sent "
            "to W&B again (the first values are kept; TRAIN_RESUME_REPLAYED=log sends them)"
        )
        self._replay = _Replay(self, logged)
