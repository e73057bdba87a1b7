"""WandbResumeCallback: the checkpoint carries its own W&B run id.

At every save the live run id lands in trainer_state.json as
``stateful_callbacks.WandbResumeCallback.args.wandb_run_id`` (the bash library's
"trainer-state" source), with the run's project, entity and ``wandb_step``: the
``_step`` of the run's last history row at the save, numbered as the W&B server
numbers it (what ``--wandb-rewind`` rewinds to). On train begin (main process, W&B
active) it checks the live run against the launcher's WANDB_RUN_ID and records the
resume in the run's config under ``train_resume/`` and with a ``resumed`` tag.

On a resume, the steps between the checkpoint and the last step the run already
holds are trained again ("replayed"); their W&B rows are not sent a second time, so
the history keeps one point per global step (``train_resume/replayed_steps`` records
the range). With WANDB_RESUME_FROM (a rewind) nothing is dropped: the server cuts
the history back to the checkpoint instead.

On a stop signal (TRAIN_RESUME_STOP_SIGNALS, which wandb_resume::supervise exports for
its command; USR1,TERM when unset: a scheduler's warning before preemption or
time-out) it asks the Trainer to save a checkpoint at the end of the current step and
stop, so the next start resumes from that very step; every rank stops at the same
step (the signal is agreed on by an all-reduce), and at train end the process exits
with 128+signal (USR1: 138, TERM: 143), so that nobody takes a preempted run for a
finished one. A stop signal that lands when the run is at its end (its last step, or
a step where another rule stops it) changes nothing: training ends there anyway,
finished, exit 0, no step beyond it.

At train end the world process zero records how training ended in
OUTPUT_DIR/.train-resume/ended (record_end; wandb_resume::supervise and the decision
read it): reached max_steps, ran its epochs, stopped by should_training_stop before
max_steps (a callback's rule, EarlyStoppingCallback), or by a stop signal (with the
step saved); so a launcher's status (torchrun: 1) does not hide which.

A save is recorded (OUTPUT_DIR/.train-resume/saved/checkpoint-N) only once every
rank has finished it: with several ranks, they meet at a barrier first.

Importing this module imports neither transformers nor wandb; the class is built
on first access. train_resume.hook gives every Trainer one.
"""

import os
import signal
import sys
import threading
import time

from train_resume.log import log

NAME = "WandbResumeCallback"
# The stop signals when TRAIN_RESUME_STOP_SIGNALS is unset: what wandb_resume::supervise
# exports by default (its --signal USR1, and TERM).
DEFAULT_STOP_SIGNALS = "USR1,TERM"
GLOBAL_STEP = "train/global_step"  # the x-axis transformers' WandbCallback defines
_CLASS = None


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


def _distributed():
    """torch.distributed when this process is one of several ranks, else None."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist if dist.get_world_size() > 1 else None


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
        name = signal.Signals(signum).name
        log(
            f"⏹ preempted ({name}): checkpoint-{state.global_step} is saved; "
            f"exiting with status {status} (not finished: the next start resumes)"
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
        name = signal.Signals(signum).name.removeprefix("SIG")
        record_end(
            args.output_dir,
            reason="signal",
            signal=name,
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
        return "max_steps" if args.max_steps > 0 else "epochs"
    return "should_training_stop" if control.should_training_stop else "epochs"


def record_end(output_dir, **fields):
    """Record why training ended in OUTPUT_DIR/.train-resume/ended, for
    wandb_resume::supervise and the decision (read by wandb_resume::_read_ended, one
    bash function; never evaluated): one NAME=VALUE line per field, FIELDS (reason:
    signal, max_steps, epochs or should_training_stop; signal: the stop signal's name,
    USR1, also beside a reason that is not `signal` when one landed at the run's end;
    step: the global step; max_steps) then job (TRAIN_RESUME_JOB) and time (seconds
    since the epoch). Written whole (a temporary file, then a rename); a failure is a
    warning. Nothing in an output dir the trainer left absent or empty (it saved
    nothing: no record needed, and a run that wrote nothing leaves OUTPUT_DIR as it
    found it, for scripts that refuse a non-empty one)."""
    fields.update(job=os.environ.get("TRAIN_RESUME_JOB", ""), time=int(time.time()))
    folder = os.path.join(output_dir, ".train-resume")
    try:
        if not os.path.isdir(output_dir) or not os.listdir(output_dir):
            return
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".ended.{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(f"{k}={v}\n" for k, v in fields.items()))
        os.replace(tmp, os.path.join(folder, "ended"))
    except OSError as err:
        log(f"⚠️ could not record the end of training in {folder}: {err}")


def _record_saves(output_dir, global_step):
    """Record the save of checkpoint-N just made, and forget the records of
    checkpoints that are gone (rotated away by save_total_limit)."""
    folder = os.path.join(output_dir, ".train-resume", "saved")
    try:
        record_save(os.path.join(output_dir, f"checkpoint-{global_step}"))
        for name in os.listdir(folder):
            if name.startswith("checkpoint-") and not os.path.isdir(os.path.join(output_dir, name)):
                os.unlink(os.path.join(folder, name))
    except OSError as err:
        log(f"⚠️ could not record the save of checkpoint-{global_step} in {folder}: {err}")


# How long the bash library may take to check a checkpoint and write its record
# (~tens of ms for a typical save; a huge trainer_state.json in another layout than
# HF's costs a full parse).
RECORD_TIMEOUT = 600


def record_save(checkpoint):
    """Record the save of CHECKPOINT in <its parent>/.train-resume/saved/<its name>: the
    save's commit marker. First at once, trainer_state.json's size, inode, mtime and
    ctime alone (format 1: the decision reads the ends of a large state and checks the
    rest at every restart); then the bash library writes it again
    (wandb_resume::record_save, lib/wandb_resume/saved.bash): it checks the checkpoint
    as the decision does and records what the decision would otherwise work out at every
    restart (the identity of every file, global_step, max_steps, the run ids), so that
    while the files still match, the decision reads nothing else. So a process killed
    while the library checks leaves the save committed all the same. Its warnings (a
    checkpoint that is not complete as saved) go to stderr; where it cannot be run, the
    first record stays. A checkpoint not there (a hyperparameter search's run dir):
    nothing. Raises OSError when no record can be written."""
    state = os.path.join(checkpoint, "trainer_state.json")
    if not os.path.isfile(state):
        return
    _record_identity(checkpoint, state)
    from train_resume.hook import _library

    lib = _library()
    problem = "cannot find train-resume's bash library (lib/wandb_resume.sh)"
    if lib is not None:
        import subprocess

        script = 'source "$1" && shift && wandb_resume::record_save "$@"'
        try:
            done = subprocess.run(
                ["bash", "-c", script, "train-resume", lib, checkpoint],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=RECORD_TIMEOUT,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            problem = f"cannot run bash with {lib}: {exc}"
        else:
            sys.stderr.write(done.stderr)
            if done.returncode == 0:
                return
            problem = f"{lib} exited {done.returncode}"
    log(f"⚠️ {problem}: the save record of {checkpoint} holds trainer_state.json's identity only")


def _record_identity(checkpoint, state):
    """The record of format 1: STATE's size, inode, mtime and ctime, as
    `stat -c '%s %i %.9Y %.9Z'` prints them."""
    parent, name = os.path.split(os.path.normpath(checkpoint))
    st = os.stat(state)
    folder = os.path.join(parent, ".train-resume", "saved")
    os.makedirs(folder, exist_ok=True)
    line = f"{st.st_size} {st.st_ino} {_stat_time(st.st_mtime_ns)} {_stat_time(st.st_ctime_ns)}\n"
    tmp = os.path.join(folder, f".{name}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(line)
    os.replace(tmp, os.path.join(folder, name))


def _stat_time(ns):
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _build():
    from transformers.trainer_callback import ExportableState, TrainerCallback

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
                _record_saves(args.output_dir, state.global_step)

        def on_step_begin(self, args, state, control, **kwargs):
            self._global_step = state.global_step

        def on_log(self, args, state, control, logs=None, **kwargs):
            self._global_step = state.global_step

        def on_train_end(self, args, state, control, **kwargs):
            if self._replay is not None:
                self._replay.restore()
            signum = getattr(self, "_stopped_by", None)
            if signum is not None:
                _exit_preempted(signum, args, state)
            if not state.is_world_process_zero:
                return
            fields = {"reason": _how_it_ended(args, state, control)}
            late = getattr(self, "_late_signal", None) or getattr(self, "_stop_signal", None)
            if late is not None:
                fields["signal"] = signal.Signals(late).name.removeprefix("SIG")
            fields.update(step=state.global_step, max_steps=state.max_steps)
            record_end(args.output_dir, **fields)

        def _on_signal(self, signum, frame):
            self._stop_signal = signum

        def _watch_signals(self):
            """Turn the stop signals (TRAIN_RESUME_STOP_SIGNALS, DEFAULT_STOP_SIGNALS when
            unset) into a save at the end of the current step and a clean stop."""
            if threading.current_thread() is not threading.main_thread():
                return
            names = os.environ.get("TRAIN_RESUME_STOP_SIGNALS") or DEFAULT_STOP_SIGNALS
            for name in filter(None, (n.strip().upper() for n in names.split(","))):
                sig = getattr(signal, name if name.startswith("SIG") else f"SIG{name}", None)
                if sig is not None:
                    signal.signal(sig, self._on_signal)

        def on_step_end(self, args, state, control, **kwargs):
            signum = _agreed_signal(getattr(self, "_stop_signal", None), args)
            if signum is not None and (
                state.global_step >= state.max_steps or control.should_training_stop
            ):
                # The run is at its end (its last step; or another rule, run before us,
                # stops it here): training ends now anyway. Finished, not preempted: a
                # requeue would resume the end and train a step past it.
                if getattr(self, "_late_signal", None) is None and state.is_world_process_zero:
                    log(
                        f"⏸ {signal.Signals(signum).name} at step {state.global_step}, where "
                        "training ends anyway: finished, not preempted (exit 0)"
                    )
                self._late_signal = signum
            elif signum is not None:
                self._stopped_by = signum
                if state.is_world_process_zero:
                    name = signal.Signals(signum).name
                    log(
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
                log(
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
                meta.update(self._continue_history(run, state.global_step))
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
                log(f"⚠️ could not record the resume in W&B: {exc}")

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
            replayed = [resume_step + 1, logged]
            what = f"global steps {replayed[0]}-{replayed[1]}"
            if os.environ.get("TRAIN_RESUME_REPLAYED", "drop") == "log":
                log(
                    f"↩ {what} replay steps the run already holds; "
                    "logged again (TRAIN_RESUME_REPLAYED=log)"
                )
            else:
                log(
                    f"↩ {what} replay steps the run already holds: their rows are not sent "
                    "to W&B again (the first values are kept; TRAIN_RESUME_REPLAYED=log sends them)"
                )
                self._replay = _Replay(self, logged)
            return {"replayed_steps": replayed}

    return WandbResumeCallback


def __getattr__(name):
    global _CLASS
    if name == NAME:
        if _CLASS is None:
            _CLASS = _build()
        return _CLASS
    raise AttributeError(name)
