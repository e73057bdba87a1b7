# shellcheck shell=bash
#
# usage.bash: the help text of bin/train-resume and wandb_resume::configure.
# Part of lib/wandb_resume.sh (sourced by it; not meant to be sourced alone).

#######################################
# Print the help text of bin/train-resume and wandb_resume::configure.
# Outputs: the help text on stdout.
#######################################
wandb_resume::usage() {
  cat <<'EOF'
Usage: train-resume [OPTIONS] [--] COMMAND [ARGS...]
       train-resume [OPTIONS] --explain [--json]
       wandb_resume::configure [OPTIONS]        (after: source lib/wandb_resume.sh)
       train-resume sync OUTPUT_DIR [--dry-run]  (upload offline W&B runs in order:
                                                 train-resume sync --help)

Decide whether this job resumes training, from which checkpoint and which W&B
run it continues; export WANDB_RUN_ID / WANDB_RESUME / TRAIN_RESUME_CHECKPOINT;
then run COMMAND (exec: its exit status is ours). Every step is logged on stderr.

Options:
  -o, --output-dir DIR      the trainer's output dir, holding checkpoint-N folders
  -c, --checkpoint WHICH    PATH of a checkpoint, `latest` (the newest complete
                            one under the output dir) or `none` (a new run)
      --config FILE         the trainer's YAML or JSON config: its
                            resume_from_checkpoint (a path, true/latest; YAML
                            on/yes/off/no are booleans) and, without
                            --output-dir, its output_dir are used (~ expanded)
      --wandb-dir DIR       also look for W&B run folders in DIR/wandb (as for
                            WANDB_DIR), or in DIR itself when it is named wandb
      --resume-mode MODE    WANDB_RESUME on a resume: must (default) or allow
      --sources LIST        run id sources, in order, comma-separated, from
                            checkpoint-wandb, trainer-state, wandb-dir, env
                            (default: all four, in that order)
      --wandb-rewind        on a resume, rewind the W&B run to the _step the
                            checkpoint recorded: WANDB_RESUME_FROM=<id>?_step=<n>
                            instead of WANDB_RESUME (wandb >= 0.17.1; offline
                            >= 0.20.0, applied at sync; a server feature in
                            preview); no recorded step: WANDB_RESUME, warned
      --allow-weights-only  accept a weights-only (save_only_model) checkpoint
                            (the trainer starts a fresh optimizer and scheduler)
      --no-lock             do not join the output dir's job (no lock, no
                            decision shared with the job's other tasks)
      --forget-failed       remove the failed-load records in
                            OUTPUT_DIR/.train-resume/failed (with --explain:
                            only ignore them in that decision)
  -n, --explain             decide and log, export and run nothing
      --json                print the decision as one JSON object (implies --explain)
  -q, --quiet               log nothing but errors
  -h, --help                show this help
      --version             show the version
      --lib                 print the path of the bash library to source in a
                            job script: source "$(train-resume --lib)"

One job per output dir: running a COMMAND (and in wandb_resume::configure),
train-resume first joins the output dir's job, whose state lives beside it in
<parent>/.train-resume/<name of OUTPUT_DIR>/ (a new run leaves OUTPUT_DIR as it
found it). A job is its SLURM job (array task, restart count), else the first
decision's process and its children (TRAIN_RESUME_JOB). Its tasks, on any node,
are let in, and those that start together use one decision (the first decides,
the others read it and check they see the chosen checkpoint). Another job whose
processes are alive (the launcher, whose pid the exec keeps, and every Python
process of the job, torchrun's workers included) gets exit 1 at once, naming its
host, job and a live pid (TRAIN_RESUME_LOCK_WAIT=SECONDS: wait that long first).
Not with --explain; not with --no-lock.

Which checkpoint (first match wins): --checkpoint; RESUME_FROM_CHECKPOINT_DIR;
resume_from_checkpoint in --config; otherwise latest. A checkpoint is complete
when its trainer_state.json is readable, one JSON object a full parse accepts
(no NUL bytes, no byte order mark, valid UTF-8, no number such as 01 or .5 that
jq takes and Python's json refuses; only its ends are read while it is as the
trainer saved it) and its global_step is N, and the files a resume loads are
there and whole: model weights (a folder without them is not complete;
safetensors offsets fit the file, every shard of an index), optimizer.pt,
scheduler.pt, rng_state.pth (torch zip files end with their end record). The
save record OUTPUT_DIR/.train-resume/saved/NAME, written by this check when our
callback has every rank's save done (a newer checkpoint without one did not
finish its save), answers instead while the checkpoint's files all match it (one
stat; only trainer_state.json is read again, for NUL bytes); any change, and the
files are checked again. A weights-only (save_only_model) one is skipped unless
--allow-weights-only; incomplete ones are skipped with a warning when looking
for the latest, and are an error when named explicitly. No checkpoint at all
means a new run; checkpoints but none complete is an error (start over on
purpose with --checkpoint none). A failure of jq or grep themselves is an error,
never a skipped checkpoint. A checkpoint the trainer failed to load (recorded by
the Python hook in OUTPUT_DIR/.train-resume/failed/NAME) is skipped with the
recorded error, unless its trainer_state.json is newer than the record;
--forget-failed clears the records. A checkpoint already at its run's max_steps
is resumed with a warning;
so is the one where the trainer's end record (OUTPUT_DIR/.train-resume/ended,
written by our callback at train end) says the run stopped by its own rule
before max_steps (should_training_stop: EarlyStoppingCallback).
The checkpoint it would take being unreadable to us
is an error (owner, mode, user), not a skip; one deleted while it is checked is
passed over and the output dir listed again. --checkpoint none beside complete
checkpoints warns, naming them and the one the next plain restart resumes.
Only a load failure that is the checkpoint's own is recorded: not an I/O error
that may pass (EIO, ESTALE, a lost file system), a timeout or a permission
problem; after those the next start tries the same checkpoint again.

Which W&B run id (first source in order wins; disagreements are warned about):
  checkpoint-wandb  run folders in CHECKPOINT/wandb (the checkpoint's own record)
  trainer-state  the checkpoint's trainer_state.json:
                 stateful_callbacks.*.args.wandb_run_id, then a top-level wandb_run_id
  wandb-dir      run folders in OUTPUT_DIR/wandb, --wandb-dir, $WANDB_DIR/wandb
                 (run-<time>-<id>, offline-run-<time>-<id>: the one latest-run
                 points to, else the newest)
  env            an existing WANDB_RUN_ID

Environment:
  RESUME_FROM_CHECKPOINT_DIR  the checkpoint to resume (as --checkpoint)
  WANDB_RESUME_SOURCES        as --sources
  WANDB_RESUME_MODE           as --resume-mode
  WANDB_RESUME_LANG           en or zh (default: zh when LC_ALL/LANG start with zh)
  WANDB_DIR                   where W&B keeps its run folders (DIR/wandb)
  WANDB_MODE                  offline or dryrun: on a resume, a warning when the
                              trainer's wandb is older than 0.31.0 (the version
                              the offline resume was verified with)
  TRAIN_RESUME_HOOK           0: no Python hand-off (the bootstrap is not put on
                              PYTHONPATH, or is taken off it again)
  TRAIN_RESUME_CALLBACK       0: Trainers get no WandbResumeCallback
  TRAIN_RESUME_ALLOW_FRESH_START  1: a Trainer that starts at step 0 while the
                              job resumes gets a warning instead of an error
  TRAIN_RESUME_RESUME_ARG     1: also append --resume_from_checkpoint CHECKPOINT
                              to `python SCRIPT` / `python -m MODULE` COMMANDs
                              (run through python -m train_resume)
  TRAIN_RESUME_LOCK_WAIT      seconds to wait for another job on the output dir
                              to end before refusing (default 0)
  TRAIN_RESUME_JOB            the job (set by a decision, inherited)

Exported on a resume: WANDB_RUN_ID=<id>, WANDB_RESUME=must,
TRAIN_RESUME_CHECKPOINT=<absolute path>, TRAIN_RESUME_RUN_ID_SOURCE=<source>.
On a resume and a new run: TRAIN_RESUME_OUTPUT_DIR=<absolute output dir>.
With --wandb-rewind and a recorded step: WANDB_RESUME_FROM=<id>?_step=<n>,
WANDB_RESUME unset.
Resume without a run id: WANDB_RESUME=allow (and the checkpoint).
New run: WANDB_RESUME=allow; TRAIN_RESUME_CHECKPOINT and TRAIN_RESUME_RUN_ID_SOURCE
unset; WANDB_RUN_ID not set by us.
Always: PYTHONPATH=<root>/train_resume/bootstrap:<root>:... (the hand-off);
TRAIN_RESUME_OUTPUT_DIR=<the output dir decided for>; TRAIN_RESUME_JOB=<the
job's key>, TRAIN_RESUME_JOB_DIR=<its state dir> (unset with --no-lock).
In a job script, wandb_resume::supervise puts the decision's variables (all of
the above but TRAIN_RESUME_JOB and TRAIN_RESUME_JOB_DIR, the job's) back as they
were before wandb_resume::configure when it returns: a later wandb.init() in the
script starts a W&B run of its own.

The hand-off: every Python process COMMAND starts (python, torchrun, accelerate,
deepspeed, trl, a shell script...) runs train-resume's sitecustomize first (and,
where train-resume is pip-installed, its train-resume.pth, whatever PYTHONPATH
the job sets): each transformers Trainer gets the WandbResumeCallback, and
train() called without resume_from_checkpoint resumes from
TRAIN_RESUME_CHECKPOINT when the Trainer's real output_dir is
TRAIN_RESUME_OUTPUT_DIR; a Trainer on another dir gets the decision made for its
own dir (it resumes its own checkpoints, or starts a new run and a new W&B run).
A path the script gives wins, unless the decision passed it over (then the
decision's, said); False is respected, with a warning. A Trainer that would
start at step 0 while it resumes stops with an error before the first step; so
does every rank when one cannot read the chosen checkpoint. On a resume, a
`python ...` COMMAND is asked whether it loads the hand-off (a warning if not).

--explain --json prints:
  {"mode": "resume"|"new", "checkpoint": PATH|null, "run_id": ID|null,
   "run_id_source": "checkpoint-wandb"|"trainer-state"|"wandb-dir"|"env"|null,
   "wandb_resume": "must"|"allow"|null (null: rewound),
   "wandb_resume_from": "<id>?_step=<n>"|null,
   "skipped": [{"path": PATH, "reason": TEXT}...], "warnings": [TEXT...]}
  Strings are UTF-8; a byte of a path that is not valid UTF-8 is written as
  \udcXX, as Python's os.fsdecode reads it (os.fsencode gives the bytes back).

Exit status: 0 decided (or COMMAND's own status), 1 the decision failed (an
explicit checkpoint is unusable, the output dir unreadable, jq missing: it is
needed on every start, since the restarts read checkpoints with it; another job
holds the output dir, ...), 2 usage error, 126 COMMAND is not executable, 127
COMMAND not found (nothing was decided or run).
EOF
}
