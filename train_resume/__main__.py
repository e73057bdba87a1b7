"""python -m train_resume [--no-resume-arg] [--no-callback] (SCRIPT | -m MODULE) [ARGS...]

Run a trainer in this interpreter, as `python SCRIPT ARGS` or `python -m MODULE ARGS`
would, after train-resume's decision: append ``--resume_from_checkpoint
$TRAIN_RESUME_CHECKPOINT`` when resuming (unless ARGS carry one, or
--no-resume-arg) and give every transformers Trainer the WandbResumeCallback
(unless --no-callback). The trainer's exit status is passed back unchanged.
"""

import os
import runpy
import sys

USAGE = __doc__.splitlines()[0]
RESUME_FLAGS = ("--resume_from_checkpoint", "--resume-from-checkpoint")


def log(message):
    print(f"train-resume: {message}", file=sys.stderr, flush=True)


def with_resume_arg(args, checkpoint):
    """Return ARGS with --resume_from_checkpoint CHECKPOINT, unless they have one."""
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if flag in RESUME_FLAGS:
            if not eq:
                value = args[i + 1] if i + 1 < len(args) else ""
            if os.path.abspath(value or ".") != checkpoint:
                log(
                    f"⚠️ the trainer's own {flag} {value!r} differs from the decision "
                    f"{checkpoint!r}; keeping the trainer's"
                )
            return list(args)
    return [*args, "--resume_from_checkpoint", checkpoint]


def main(argv):
    resume_arg = callback = True
    while argv and argv[0] in ("--no-resume-arg", "--no-callback", "-h", "--help"):
        flag = argv.pop(0)
        if flag in ("-h", "--help"):
            print(__doc__)
            return 0
        resume_arg = resume_arg and flag != "--no-resume-arg"
        callback = callback and flag != "--no-callback"
    module = None
    if argv[:1] == ["-m"] and len(argv) >= 2:
        module, args = argv[1], argv[2:]
    elif argv and not argv[0].startswith("-"):
        script, args = argv[0], argv[1:]
    else:
        print(f"usage: {USAGE}", file=sys.stderr)
        return 2
    checkpoint = os.environ.get("TRAIN_RESUME_CHECKPOINT")
    if checkpoint and resume_arg:
        args = with_resume_arg(args, checkpoint)
    rank = os.environ.get("RANK")
    where = f" (rank {rank})" if rank is not None else ""
    if checkpoint:
        run_id = os.environ.get("WANDB_RUN_ID", "(new)")
        mode = os.environ.get("WANDB_RESUME")
        log(
            f"▶ handing off{where}: resume from {checkpoint}, W&B run {run_id}, WANDB_RESUME={mode}"
        )
    if callback:
        from train_resume.hook import install

        install()
    if module is not None:
        sys.argv = [module, *args]  # runpy puts the module's file in argv[0]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [script, *args]
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
