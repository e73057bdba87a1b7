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

Importing this module imports neither transformers nor wandb: the class lives in
train_resume.resume_callback, imported on first access to
train_resume.callback.WandbResumeCallback. train_resume.hook gives every Trainer one.
"""

import os
import sys
import time

from train_resume import log

NAME = "WandbResumeCallback"
# The end record's reasons, by their place in the shared definitions' list
# (train_resume.layout.end_reasons: ENDED_STOPPED, then ENDED_FINISHED's three).
SIGNAL, MAX_STEPS, EPOCHS, SHOULD_TRAINING_STOP = range(4)


def record_end(output_dir, reason, **fields):
    """Record why training ended in OUTPUT_DIR/.train-resume/ended, for
    wandb_resume::supervise and the decision (read by wandb_resume::_read_ended, one
    bash function; never evaluated): one NAME=VALUE line per field: reason (REASON:
    SIGNAL, MAX_STEPS, EPOCHS or SHOULD_TRAINING_STOP, written as the shared definitions
    name it: signal, max_steps, epochs, should_training_stop), FIELDS (signal: the stop
    signal's name, USR1, also beside a reason that is not `signal` when one landed at
    the run's end; step: the global step; max_steps) then job (TRAIN_RESUME_JOB) and
    time (seconds since the epoch). Written whole (a temporary file, then a rename); a
    failure is a warning. Nothing in an output dir the trainer left absent or empty (it
    saved nothing: no record needed, and a run that wrote nothing leaves OUTPUT_DIR as
    it found it, for scripts that refuse a non-empty one)."""
    from train_resume import layout

    folder = output_dir  # (where, when the record cannot be named)
    try:
        if not os.path.isdir(output_dir) or not os.listdir(output_dir):
            return
        fields = {"reason": layout.end_reasons()[reason], **fields}
        fields.update(job=os.environ.get("TRAIN_RESUME_JOB", ""), time=int(time.time()))
        folder, path = layout.state_dir(output_dir), layout.ended_file(output_dir)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(f"{k}={v}\n" for k, v in fields.items()))
        os.replace(tmp, path)
    except OSError as err:
        log(f"⚠️ could not record the end of training in {folder}: {err}")


def _record_saves(output_dir, global_step):
    """Record the save of checkpoint-N just made, and forget the records of
    checkpoints that are gone (rotated away by save_total_limit)."""
    from train_resume import layout

    folder = output_dir  # (where, when the records' folder cannot be named)
    try:
        folder = layout.saved_dir(output_dir)
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
    (wandb_resume::record_save, lib/wandb_resume/record.bash): it checks the checkpoint
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
    from train_resume.hook import call_library

    done, problem = call_library("wandb_resume::record_save", checkpoint, timeout=RECORD_TIMEOUT)
    if done is not None:
        sys.stderr.write(done.stderr)
        if done.returncode == 0:
            return
        problem = f"the library's record_save exited {done.returncode}"
    log(f"⚠️ {problem}: the save record of {checkpoint} holds trainer_state.json's identity only")


def _record_identity(checkpoint, state):
    """The record of format 1: STATE's size, inode, mtime and ctime, as
    `stat -c '%s %i %.9Y %.9Z'` prints them."""
    from train_resume import layout

    parent, name = os.path.split(os.path.normpath(checkpoint))
    st = os.stat(state)
    folder = layout.saved_dir(parent)
    os.makedirs(folder, exist_ok=True)
    line = f"{st.st_size} {st.st_ino} {_stat_time(st.st_mtime_ns)} {_stat_time(st.st_ctime_ns)}\n"
    tmp = os.path.join(folder, f".{name}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(line)
    os.replace(tmp, os.path.join(folder, name))


def _stat_time(ns):
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def __getattr__(name):
    """WandbResumeCallback, imported on first access (train_resume.resume_callback
    imports transformers); DEFAULT_STOP_SIGNALS, the stop signals when
    TRAIN_RESUME_STOP_SIGNALS is unset (the shared definitions' STOP_SIGNALS: what
    wandb_resume::supervise forwards by default, and TERM)."""
    if name == NAME:
        from train_resume.resume_callback import WandbResumeCallback

        return WandbResumeCallback
    if name == "DEFAULT_STOP_SIGNALS":
        from train_resume import layout

        return layout.name("STOP_SIGNALS")
    raise AttributeError(name)
