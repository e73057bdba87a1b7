"""The hand-off: make every transformers Trainer of this process carry out the decision.

activate() is the one place that decides how the hand-off happens; the bootstrap
(train_resume/bootstrap/sitecustomize.py, in every Python process of a job), the
site-packages ``train-resume.pth`` of an installed package and ``python -m train_resume``
all call it. It installs an import hook that patches ``transformers.Trainer`` once
``transformers.trainer`` is imported (at once when it already is). Importing this module
imports neither transformers nor wandb. The patched Trainer:

- carries a WandbResumeCallback (train_resume.callback), unless it has one, or
  TRAIN_RESUME_CALLBACK=0 / ``python -m train_resume --no-callback``;
- checks the decision where it is applied: at train(), the Trainer's real output_dir
  (absolute, symlinks resolved) is compared with the dir the decision was made for
  (TRAIN_RESUME_OUTPUT_DIR). The same dir: the decision's checkpoint. Another dir: that
  Trainer is not handed the checkpoint; the bash library decides for its own dir (run
  from here: Python never re-implements the decision), and the Trainer resumes or
  starts per that decision, with the W&B variables of that decision set in this process
  for its train() only (a W&B run started meanwhile is finished when it returns, so the
  next Trainer does not log into it). Each output dir's decision is carried out by the
  first train() on it; later ones on that dir are left alone;
- resumes: ``train()`` with ``resume_from_checkpoint`` None (or True: "the latest")
  gets the checkpoint. A path given by the script wins (one line when it differs from
  the decision), unless the decision passed it over (a checkpoint-N newer than the
  chosen one in the same dir, or one the bash library finds unusable): then the
  decision's checkpoint, saying so. False is respected, with a warning;
- with several ranks (torch.distributed initialized, world > 1): rank 0's plan is
  broadcast and every rank checks it can read the chosen checkpoint (one gather), so a
  rank that cannot see it stops every rank with the same error, before training;
- has a safety net that runs first at train begin, before W&B starts: when the Trainer
  resumes a checkpoint and training begins at global_step 0 (it did not resume,
  whatever the reason), it raises FreshStartError, so that a resumed W&B run never gets
  a fresh trajectory. TRAIN_RESUME_ALLOW_FRESH_START=1 makes it a warning;
- records a failed load: when train(resume_from_checkpoint=X) raises while loading X
  (deterministically: train_resume.failures tells a transient I/O error apart),
  it writes ``<dir of X>/.train-resume/failed/<name of X>`` (one line ``Type: message``;
  the bash side passes that checkpoint over next time) and re-raises.
"""

import os
import sys

from train_resume import PREFIX, log
from train_resume import where as _where

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
# The real output dirs whose decision a train() of this process has carried out: later
# Trainers on those dirs are left alone (a second train() on a dir this process wrote
# must not "resume" its own new checkpoints).
_settled = set()
# The bash library, found once (see _library).
_found = {}
# What a decision exports (export.bash): set for another dir's train(), put back after.
DECISION_VARIABLES = (
    "TRAIN_RESUME_OUTPUT_DIR",
    "TRAIN_RESUME_CHECKPOINT",
    "TRAIN_RESUME_RUN_ID_SOURCE",
    "WANDB_RUN_ID",
    "WANDB_RESUME",
    "WANDB_RESUME_FROM",
)


class FreshStartError(RuntimeError):
    """Training was about to start at step 0 while the job resumes from a checkpoint."""


class DecisionError(RuntimeError):
    """The decision cannot be applied to this Trainer (the decision for its output dir
    failed, or not every rank can read the chosen checkpoint): stopped before training."""


def _same_path(a, b):
    return os.path.realpath(os.fspath(a)) == os.path.realpath(os.fspath(b))


def _real(path):
    """PATH absolute (against this process's cwd, as the Trainer uses it), symlinks resolved."""
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def _in_force():
    """Is a decision in force in this process (one of its exports is set)?"""
    env = os.environ
    return bool(env.get("TRAIN_RESUME_OUTPUT_DIR") or env.get("TRAIN_RESUME_CHECKPOINT"))


def _decision_dir():
    """The dir the job's decision was made for (an older library exported only the
    checkpoint: its parent)."""
    out = os.environ.get("TRAIN_RESUME_OUTPUT_DIR")
    if out:
        return out
    checkpoint = os.environ.get("TRAIN_RESUME_CHECKPOINT")
    return os.path.dirname(os.path.abspath(checkpoint).rstrip(os.sep)) if checkpoint else None


class _Plan:
    """What one train() does under the decision: DIR is the Trainer's real output dir,
    CHECKPOINT the one it resumes (None: a new run), ENV the decision variables set for
    its train() (None: the job's, as they are), ERROR a reason to stop before training."""

    def __init__(self, out, checkpoint=None, env=None, error=None):
        self.dir, self.checkpoint, self.env, self.error = out, checkpoint, env, error


def _library():
    """The bash library's path (None when not found), found once (train_resume.layout.find:
    beside the package this hook was imported from, the installed data files, then
    `train-resume --lib` on PATH)."""
    if "lib" not in _found:
        from train_resume import layout

        _found["lib"] = layout.find(layout.LIBRARY)
    return _found["lib"]


def _job_environment():
    """The environment of a decision made from here: the job's, less what the job's
    decision exported (its run id only when the decision found it: a WANDB_RUN_ID the
    user set, source env, stays)."""
    env = dict(os.environ)
    own_id = os.environ.get("TRAIN_RESUME_RUN_ID_SOURCE") not in (None, "", "env")
    for name in (*DECISION_VARIABLES, "RESUME_FROM_CHECKPOINT_DIR"):
        if name != "WANDB_RUN_ID" or own_id:
            env.pop(name, None)
    return env


def call_library(function, *args, env=None, timeout=600):
    """Run the bash library's FUNCTION with ARGS (`source lib && FUNCTION ARGS`), stdin
    closed, output captured: the one way the Python side asks the library to decide.
    Returns (the CompletedProcess, None), or (None, what stopped it from running)."""
    lib = _library()
    if lib is None:
        return None, "cannot find train-resume's bash library (lib/wandb_resume.sh)"
    import subprocess

    script = f'source "$1" && shift && {function} "$@"'
    try:
        done = subprocess.run(
            ["bash", "-c", script, "train-resume", lib, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"cannot run bash with {lib}: {exc}"
    return done, None


def _run_library(*options):
    """Run `wandb_resume::configure --explain --json OPTIONS` with the bash library, in
    the job's environment (_job_environment). Returns (status, decision or None, logs)."""
    done, problem = call_library(
        "wandb_resume::configure --explain --json", *options, env=_job_environment()
    )
    if done is None:
        return None, None, problem
    import json

    decision = None
    if done.returncode == 0:
        try:
            decision = json.loads(done.stdout)
        except ValueError:
            return None, None, f"{_library()} printed no decision: {done.stdout[:200]!r}"
    return done.returncode, decision, done.stderr


def _decide_for(out, decided_for):
    """The plan of a Trainer whose real output dir OUT is not the dir the job's decision
    was made for (DECIDED_FOR, or None): the bash library decides for OUT."""
    status, decision, logs = _run_library("-o", out)
    if decision is None:
        sys.stderr.write(logs if logs.endswith("\n") or not logs else logs + "\n")
        return _Plan(
            out,
            error=(
                f"❌ this Trainer's output_dir {out} is not the dir the decision was made for "
                f"({decided_for}), and the decision for {out} failed"
                + (f" (exit {status}, above)" if status is not None else f": {logs}")
                + ". Stopped before training, so that no new run starts over its checkpoints"
            ),
        )
    checkpoint = decision.get("checkpoint") if decision.get("mode") == "resume" else None
    env = {
        "TRAIN_RESUME_OUTPUT_DIR": out,
        "TRAIN_RESUME_CHECKPOINT": checkpoint,
        "TRAIN_RESUME_RUN_ID_SOURCE": decision.get("run_id_source"),
        "WANDB_RUN_ID": decision.get("run_id") or _job_environment().get("WANDB_RUN_ID"),
        "WANDB_RESUME": decision.get("wandb_resume"),
        "WANDB_RESUME_FROM": decision.get("wandb_resume_from"),
    }
    if checkpoint is None:
        log(
            f"⚠️ this Trainer's output_dir {out} is not the dir the decision was made for "
            f"({decided_for}), and holds no checkpoint: a new run for {out}{_where()} "
            f"(W&B: {'run ' + env['WANDB_RUN_ID'] if env['WANDB_RUN_ID'] else 'a new run'}, "
            f"not the one of {decided_for})"
        )
    else:
        log(
            f"⚠️ this Trainer's output_dir {out} is not the dir the decision was made for "
            f"({decided_for}): decided for {out}{_where()}:"
        )
        sys.stderr.write(logs)
        sys.stderr.flush()
    return _Plan(out, checkpoint, env)


def _plan_for(trainer, leader=True):
    """The plan of TRAINER's train() (None: no decision in force, or its dir's decision
    was carried out already). Only the LEADER runs the bash library; others get None
    for a dir that needs it, and take rank 0's plan (_agree)."""
    if not _in_force():
        return None
    out = _real(getattr(trainer.args, "output_dir", None) or os.curdir)
    if out in _settled:
        return None
    decided_for = _decision_dir()
    if decided_for is not None and _real(decided_for) == out:
        return _Plan(out, os.environ.get("TRAIN_RESUME_CHECKPOINT") or None)
    return _decide_for(out, decided_for) if leader else None


def _distributed():
    """torch.distributed when it is initialized with more than one rank, else None."""
    dist = sys.modules.get("torch.distributed")
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return dist if dist.get_world_size() > 1 else None
    except (RuntimeError, ValueError):
        return None
    return None


def _visible(checkpoint):
    """'' when this process can read CHECKPOINT's trainer_state.json, else why not."""
    if checkpoint is None:
        return ""
    state = os.path.join(checkpoint, "trainer_state.json")
    if not os.path.isdir(checkpoint):
        return "no such directory" if not os.path.exists(checkpoint) else "not a directory"
    return "" if os.access(state, os.R_OK) else "cannot read its trainer_state.json"


def _agree(trainer):
    """The plan of TRAINER's train(), the same on every rank: with several ranks, rank
    0's plan is broadcast and each rank says whether it can read the chosen checkpoint
    (one gather); a rank that cannot turns the plan into the same error on every rank."""
    dist = _distributed() if _in_force() else None
    if dist is None:
        return _plan_for(trainer)
    import socket

    rank = dist.get_rank()
    mine = _plan_for(trainer, leader=rank == 0)
    box = [mine]
    dist.broadcast_object_list(box, src=0)
    plan = box[0]
    if plan is None or plan.error:
        return plan
    seen = [None] * dist.get_world_size()
    dist.all_gather_object(seen, (rank, socket.gethostname(), _visible(plan.checkpoint)))
    blind = [(r, host, why) for r, host, why in seen if why]
    if blind:
        names = "; ".join(f"rank {r} on {host}: {why}" for r, host, why in blind)
        plan.error = (
            f"❌ not every rank can read {plan.checkpoint} ({names}): every rank must resume "
            "the same checkpoint (a file system all nodes share). Stopped on every rank "
            "before training"
        )
    return plan


def _checkpoint_step(path):
    """N of a folder named checkpoint-N (None for another name)."""
    name = os.path.basename(os.fspath(path).rstrip(os.sep))
    number = name[len("checkpoint-") :]
    ok = name.startswith("checkpoint-") and number.isascii() and number.isdigit()
    return int(number) if ok else None


def _script_path(trainer, plan, value):
    """The script passed VALUE (a path) while the plan resumes plan.checkpoint: keep the
    script's, unless the decision passed it over. Returns the path train() gets."""
    checkpoint, own = plan.checkpoint, os.fspath(value)
    if _same_path(own, checkpoint):
        trainer._train_resume_how = f"the trainer did not load {checkpoint}"
        return value
    reason = None
    if _real(os.path.dirname(_real(own))) == plan.dir:
        mine, chosen = _checkpoint_step(_real(own)), _checkpoint_step(checkpoint)
        if mine is not None and chosen is not None and mine > chosen:
            reason = (
                f"is newer than the decision's {os.path.basename(checkpoint)}, so the "
                "decision passed it over (incomplete, or the trainer failed to load it: "
                f"train-resume -o {plan.dir} --explain says why)"
            )
        else:  # the bash library checks it, as it would an explicit --checkpoint
            status, _, logs = _run_library("-q", "-o", plan.dir, "-c", _real(own))
            if status == 1:
                why = logs.strip().splitlines()[-1] if logs.strip() else "exit 1"
                reason = f"cannot be used ({why.partition('cannot be used: ')[2] or why})"
    if reason is not None:
        log(
            f"⚠️ the script's resume_from_checkpoint {own!r} {reason}; resuming from "
            f"{checkpoint} instead{_where()}"
        )
        trainer._train_resume_how = f"the trainer did not load {checkpoint}"
        return checkpoint
    trainer._train_resume_how = f"the script resumes from {own} itself"
    log(
        f"⚠️ the script's resume_from_checkpoint {own!r} differs from the "
        f"decision {checkpoint!r}; keeping the script's{_where()}"
    )
    return value


def _resume_arg(trainer, plan, value):
    """The resume_from_checkpoint that train() runs with; logs what was decided."""
    checkpoint = plan.checkpoint if plan is not None else None
    if not checkpoint:
        return value
    if value is False:
        trainer._train_resume_how = "the script called train(resume_from_checkpoint=False)"
        log(
            f"⚠️ the script refuses a resume (train(resume_from_checkpoint=False)){_where()}, "
            f"although this job resumes from {checkpoint}: not resuming"
        )
        return value
    if value is None or value is True:
        run_id = os.environ.get("WANDB_RUN_ID", "(new)")
        mode = os.environ.get("WANDB_RESUME")
        log(
            f"▶ handing off{_where()}: resume from {checkpoint}, W&B run {run_id}, "
            f"WANDB_RESUME={mode}"
        )
        trainer._train_resume_how = f"the trainer did not load {checkpoint}"
        return checkpoint
    return _script_path(trainer, plan, value)


def _set_environment(env):
    """Set (None: unset) the variables of ENV; returns what was there before."""
    before = {name: os.environ.get(name) for name in env}
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return before


def _wandb_run():
    wandb = sys.modules.get("wandb")
    return getattr(wandb, "run", None) if wandb is not None else None


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
    from train_resume import layout
    from train_resume.failures import describe

    checkpoint = os.path.abspath(os.fspath(checkpoint)).rstrip(os.sep)
    parent, name = os.path.split(checkpoint)
    line = describe(exc)
    path = parent  # (where, when the records' folder cannot be named)
    try:
        path = os.path.join(layout.failed_dir(parent), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(line + "\n")
        os.replace(tmp, path)
    except OSError as err:
        log(f"⚠️ could not record the failed load of {checkpoint} in {path}: {err}")
        return
    log(f"❌ the trainer failed to load {checkpoint}{_where()}: {line} (recorded in {path})")


def _check_start(trainer, state):
    """The safety net, at train begin: refuse to start at step 0 while resuming."""
    if not hasattr(trainer, "_train_resume_plan"):  # train() was not called
        trainer._train_resume_plan = _plan_for(trainer)
        if trainer._train_resume_plan is not None:
            _settled.add(trainer._train_resume_plan.dir)
    plan = trainer._train_resume_plan
    checkpoint = plan.checkpoint if plan is not None else None
    if not checkpoint or state.global_step > 0:
        return
    how = getattr(trainer, "_train_resume_how", None) or (
        "Trainer.train() was not called (a subclass or the script went around it), so "
        f"{checkpoint} was never loaded"
    )
    run_id = os.environ.get("WANDB_RUN_ID", "(none)")
    if os.environ.get("TRAIN_RESUME_ALLOW_FRESH_START") == "1":
        log(
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
    log(message)
    raise FreshStartError(PREFIX + message)


def _build_guard():
    from transformers.trainer_callback import TrainerCallback

    class TrainResumeGuard(TrainerCallback):
        """The safety net; first of the Trainer's callbacks, so it runs before W&B's."""

        def __init__(self, trainer):
            self.trainer = trainer

        def on_train_begin(self, args, state, control, **kwargs):
            _check_start(self.trainer, state)

    return TrainResumeGuard


def _add_callbacks(trainer, guard_cls):
    """Give TRAINER the safety net (first) and a WandbResumeCallback (unless it has one,
    or TRAIN_RESUME_CALLBACK=0 / --no-callback): the callback's class is imported here,
    when a Trainer is built."""
    from train_resume import callback as _callback

    callbacks = trainer.callback_handler.callbacks
    if not any(isinstance(cb, guard_cls) for cb in callbacks):
        callbacks.insert(0, guard_cls(trainer))
    wanted = _settings["callback"] and os.environ.get("TRAIN_RESUME_CALLBACK", "1") != "0"
    if wanted and not any(type(cb).__name__ == _callback.NAME for cb in callbacks):
        trainer.add_callback(getattr(_callback, _callback.NAME))


def _train_plan(trainer):
    """The plan of TRAINER's train() (_agree), its dir settled; a plan that cannot be
    applied stops here (DecisionError), before training."""
    plan = trainer._train_resume_plan = _agree(trainer)
    if plan is not None:
        _settled.add(plan.dir)
        if plan.error:
            log(f"{plan.error}{_where()}")
            raise DecisionError(f"{PREFIX}{plan.error}{_where()}")
    return plan


def _train_recording(original_train, trainer, resume, args, kwargs):
    """original_train(trainer, RESUME, ...); a failed load of RESUME is recorded (only a
    deterministic one: train_resume.failures), then raised."""
    try:
        return original_train(trainer, resume, *args, **kwargs)
    except Exception as exc:
        if isinstance(resume, (str, os.PathLike)) and _failed_load(exc):
            from train_resume import failures

            if failures.to_record(resume, exc):
                _record_failed_load(resume, exc)
        raise


def _finish_own_run(plan, before_run):
    """After another dir's train(): a W&B run it started (not BEFORE_RUN) is finished, so
    that the next Trainer does not log into it, and wandb's settings (read from the
    environment once, at its first setup) are dropped, so that the next run is started
    from the job's variables."""
    run = _wandb_run()
    if run is None or run is before_run:
        return
    log(f"W&B run {run.id} of {plan.dir} finished with its train()")
    wandb = sys.modules["wandb"]
    wandb.finish()
    wandb.teardown()


def _patch(trainer_cls):
    """Patch trainer_cls (transformers.Trainer, so its subclasses too), once."""
    if getattr(trainer_cls.__init__, "_train_resume", False):
        return
    guard_cls = _build_guard()
    original_init, original_train = trainer_cls.__init__, trainer_cls.train

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        _add_callbacks(self, guard_cls)

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        plan = _train_plan(self)
        # Another dir's decision: its variables for this train() only (W&B reads them
        # at train begin), the job's put back when it returns.
        before = _set_environment(plan.env) if plan is not None and plan.env else None
        run = _wandb_run()
        try:
            resume = _resume_arg(self, plan, resume_from_checkpoint)
            result = _train_recording(original_train, self, resume, args, kwargs)
        finally:
            if before is not None:
                _set_environment(before)
        if before is not None:
            _finish_own_run(plan, run)
        return result

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
