"""python -m train_resume [--resume-arg] [--no-callback] (SCRIPT | -m MODULE) [ARGS...]

Run a trainer in this interpreter, as `python SCRIPT ARGS` or `python -m MODULE ARGS`
would, with train-resume's hand-off installed in it (train_resume.hook.activate, the
same hand-off the bootstrap gives every Python process under train-resume): every
transformers Trainer gets the WandbResumeCallback (unless --no-callback) and a
train() without resume_from_checkpoint resumes from $TRAIN_RESUME_CHECKPOINT.
--resume-arg (or TRAIN_RESUME_RESUME_ARG=1) also appends
``--resume_from_checkpoint $TRAIN_RESUME_CHECKPOINT`` to ARGS when resuming, unless
they carry one, for scripts that read it from their arguments (--no-resume-arg:
not even with TRAIN_RESUME_RESUME_ARG=1). The trainer's exit status is passed back
unchanged.
"""

import os
import runpy
import sys

from train_resume import log

USAGE = __doc__.splitlines()[0]
FLAGS = ("--resume-arg", "--no-resume-arg", "--no-callback", "-h", "--help")
RESUME_FLAGS = ("--resume_from_checkpoint", "--resume-from-checkpoint")


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
    resume_arg = os.environ.get("TRAIN_RESUME_RESUME_ARG") == "1"
    callback = True
    while argv and argv[0] in FLAGS:
        flag = argv.pop(0)
        if flag in ("-h", "--help"):
            print(__doc__)
            return 0
        if flag in ("--resume-arg", "--no-resume-arg"):
            resume_arg = flag == "--resume-arg"
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
    from train_resume.hook import activate

    activate(callback=callback)
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
