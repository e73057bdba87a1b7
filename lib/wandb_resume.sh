# shellcheck shell=bash
#
# wandb_resume.sh: decide whether a training job resumes, from which checkpoint,
# and which Weights & Biases run it continues; then export that decision.
#
# Source it from a job script (it changes nothing in your shell until you call it):
#
#   source "$(train-resume --lib)"                  # its path, for every install
#   wandb_resume::configure --output-dir "$OUT"     # decides, logs, exports
#
# This file is the one to source: it holds the load guard, the version and the
# public API, and sources its parts from lib/wandb_resume/ (one concern each; the
# decision reads as a sequence of steps in decide.bash).
#
# Public functions: wandb_resume::configure, wandb_resume::usage,
# wandb_resume::latest_checkpoint, wandb_resume::run_id_from_wandb_dir,
# wandb_resume::run_id_from_trainer_state, wandb_resume::check_run_id,
# wandb_resume::lock, wandb_resume::supervise, wandb_resume::record_save.
# Everything named wandb_resume::_* or _WANDB_RESUME_* is private.
#
# Guest manners: sourcing this file and calling its functions leave the caller's
# `$-`, BASHOPTS, IFS, OPTIND, traps and working directory as they were; functions
# return, never exit; nothing read from a file or a folder name is ever evaluated
# (the one `eval` puts back the caller's traps from bash's own `trap -p`);
# checkpoints are only read, never written.

# The load guard. Up to the bash check this is plain POSIX sh, so that dash, zsh,
# a POSIX-mode bash or a bash older than 4.4 get one line on stderr and a non-zero
# return: never an exit, never a half-loaded library (_WANDB_RESUME_LOADED is set
# last). Words are quoted (\printf) until alias expansion is off, so that a
# caller's aliases cannot change them.
if [ -z "${BASH_VERSION:-}" ]; then
  \printf '%s\n' 'wandb_resume.sh: needs bash >= 4.4, and this shell is not bash: run the job script with bash (#!/usr/bin/env bash)' >&2
  \return 1
fi
case ":${SHELLOPTS:-}:" in
  *:posix:*)
    \printf '%s\n' 'wandb_resume.sh: bash is in POSIX mode (set -o posix, or started as sh): run "set +o posix" before sourcing, or start the script with bash' >&2
    \return 1
    ;;
esac

# Everything below is read with alias expansion off (a caller's `alias printf=...`
# must not change our functions); the caller's setting is put back at the end.
if \shopt -q expand_aliases; then _WANDB_RESUME_ALIASES=1; else _WANDB_RESUME_ALIASES=''; fi
\shopt -u expand_aliases

# Put the caller's alias expansion back (the end of loading, or a part that failed).
wandb_resume::_loaded() {
  [[ -n $_WANDB_RESUME_ALIASES ]] && shopt -s expand_aliases
  unset _WANDB_RESUME_ALIASES
  return "$1"
}

# Whether bash MAJOR.MINOR is one this library supports (>= 4.4: `local -`,
# mapfile -d). Arguments: MAJOR MINOR. Returns: 0 supported, 1 not.
wandb_resume::_bash_supported() {
  [ "$1" -gt 4 ] || { [ "$1" -eq 4 ] && [ "$2" -ge 4 ]; }
}
if ! wandb_resume::_bash_supported "${BASH_VERSINFO[0]}" "${BASH_VERSINFO[1]}"; then
  printf '%s\n' "wandb_resume.sh: needs bash >= 4.4, this is bash $BASH_VERSION: install a newer bash (or module load bash)" >&2
  wandb_resume::_loaded 1
  unset -f wandb_resume::_bash_supported wandb_resume::_loaded
  return 1
fi

[[ -n ${_WANDB_RESUME_LOADED:-} ]] && wandb_resume::_loaded 0 && return 0
_WANDB_RESUME_VERSION=0.1.0

# The parts, from the folder beside this file's real path (it may be a symlink).
# Sets _WANDB_RESUME_LIB: that folder. Without symlinks this starts no process.
_WANDB_RESUME_LIB=${BASH_SOURCE[0]}
while [[ -L $_WANDB_RESUME_LIB ]]; do
  _WANDB_RESUME_T=$(readlink -- "$_WANDB_RESUME_LIB")
  [[ $_WANDB_RESUME_T == /* ]] || _WANDB_RESUME_T=${_WANDB_RESUME_LIB%/*}/$_WANDB_RESUME_T
  _WANDB_RESUME_LIB=$_WANDB_RESUME_T
done
unset _WANDB_RESUME_T
[[ $_WANDB_RESUME_LIB == */* ]] || _WANDB_RESUME_LIB=./$_WANDB_RESUME_LIB
_WANDB_RESUME_LIB=${_WANDB_RESUME_LIB%/*}/wandb_resume
[[ $_WANDB_RESUME_LIB == /* ]] || _WANDB_RESUME_LIB=$PWD/$_WANDB_RESUME_LIB

# Drop the `.`, empty and `DIR/..` parts of _WANDB_RESUME_LIB (bin/train-resume finds
# its root as <bin>/..), without a process; left as it is when a DIR before a `..` is
# a symlink (the kernel would go up from where it points). Absolute and tidy, it is
# the same wherever the caller cd's later (the hand-off puts it on PYTHONPATH).
wandb_resume::_tidy_lib() {
  local IFS=/ part tidy='' rest=$_WANDB_RESUME_LIB/
  local -a kept=()
  while [[ -n $rest ]]; do
    part=${rest%%/*} rest=${rest#*/}
    case $part in
      '' | .) ;;
      ..)
        [[ ! -L $tidy ]] || return 0
        ((${#kept[@]} == 0)) || unset 'kept[-1]'
        tidy=/${kept[*]}
        ;;
      *)
        kept+=("$part")
        tidy=/${kept[*]}
        ;;
    esac
  done
  _WANDB_RESUME_LIB=/${kept[*]}
}
wandb_resume::_tidy_lib

# The names and defaults shared with the Python side (shared.env: the .train-resume/
# layout, the stop signals, the end record's reasons), as _WANDB_RESUME_<NAME>. Its
# NAME=VALUE lines are read as data (never run); others are comments.
# Returns: 1 when it cannot be read.
wandb_resume::_read_shared() {
  local line name
  local -a lines=()
  { mapfile -t lines <"$_WANDB_RESUME_LIB/shared.env"; } 2>/dev/null || return 1
  for line in "${lines[@]}"; do
    name=${line%%=*}
    [[ $line == *=* && -n $name && $name != *[!ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_]* ]] || continue
    printf -v "_WANDB_RESUME_$name" '%s' "${line#*=}"
  done
}
wandb_resume::_read_shared || {
  printf '%s\n' "wandb_resume.sh: cannot read $_WANDB_RESUME_LIB/shared.env (a part of the library)" >&2
  wandb_resume::_loaded 1
  return 1
}
# Each part is one concern (shellcheck follows them from here). The parts a decision
# needs only sometimes are sourced when first used (below).
# shellcheck source=lib/wandb_resume/guest.bash
source "$_WANDB_RESUME_LIB/guest.bash" || wandb_resume::_loaded 1 || return 1
# shellcheck source=lib/wandb_resume/messages.bash
source "$_WANDB_RESUME_LIB/messages.bash" || wandb_resume::_loaded 1 || return 1
# shellcheck source=lib/wandb_resume/options.bash
source "$_WANDB_RESUME_LIB/options.bash" || wandb_resume::_loaded 1 || return 1
# shellcheck source=lib/wandb_resume/tools.bash
source "$_WANDB_RESUME_LIB/tools.bash" || wandb_resume::_loaded 1 || return 1
# shellcheck source=lib/wandb_resume/saved.bash
source "$_WANDB_RESUME_LIB/saved.bash" || wandb_resume::_loaded 1 || return 1
# shellcheck source=lib/wandb_resume/failed.bash
source "$_WANDB_RESUME_LIB/failed.bash" || wandb_resume::_loaded 1 || return 1
# shellcheck source=lib/wandb_resume/checkpoint.bash
source "$_WANDB_RESUME_LIB/checkpoint.bash" || wandb_resume::_loaded 1 || return 1
# shellcheck source=lib/wandb_resume/run_id.bash
source "$_WANDB_RESUME_LIB/run_id.bash" || wandb_resume::_loaded 1 || return 1
# shellcheck source=lib/wandb_resume/export.bash
source "$_WANDB_RESUME_LIB/export.bash" || wandb_resume::_loaded 1 || return 1
# shellcheck source=lib/wandb_resume/decide.bash
source "$_WANDB_RESUME_LIB/decide.bash" || wandb_resume::_loaded 1 || return 1
# shellcheck source=lib/wandb_resume/job.bash
source "$_WANDB_RESUME_LIB/job.bash" || wandb_resume::_loaded 1 || return 1
# shellcheck source=lib/wandb_resume/lock.bash
source "$_WANDB_RESUME_LIB/lock.bash" || wandb_resume::_loaded 1 || return 1

# The parts a decision needs only sometimes are sourced the first time one of their
# functions is called: the help text (usage), the trainer's config (config), reading a
# trainer_state.json and the weights' checks (state, weights: not under a save record
# that holds), sync, supervise, the --json output (json) and writing a save record
# (record). Each such function has a stub here; the part's own definition replaces
# it. Parsing them would cost every start ~3 ms (bash parses ~2 us a line). They must
# be there now: a broken install fails here, as when they were sourced at once.
for _WANDB_RESUME_T in usage config state weights sync supervise json record; do
  [[ -f $_WANDB_RESUME_LIB/$_WANDB_RESUME_T.bash && -r $_WANDB_RESUME_LIB/$_WANDB_RESUME_T.bash ]] || {
    printf '%s\n' "wandb_resume.sh: cannot read $_WANDB_RESUME_LIB/$_WANDB_RESUME_T.bash (a part of the library)" >&2
    unset _WANDB_RESUME_T
    wandb_resume::_loaded 1
    return 1
  }
done
unset _WANDB_RESUME_T

# Source the part PART (once: its functions replace their stubs), with alias
# expansion off, whatever the caller's shell has. Arguments: PART
# Outputs: on failure, one line on stderr. Returns: 0 loaded, 1 not.
wandb_resume::_need() {
  local aliases='' rc=0
  shopt -q expand_aliases && aliases=1 && shopt -u expand_aliases
  # shellcheck source=/dev/null # a part of ours, checked on its own
  source "$_WANDB_RESUME_LIB/$1.bash" || rc=$?
  [[ -n $aliases ]] && shopt -s expand_aliases
  ((rc == 0)) && return 0
  printf '%s\n' "wandb_resume.sh: cannot load $_WANDB_RESUME_LIB/$1.bash (a part of the library)" >&2
  return 1
}

# A stub's first step: unset the stub (the function that called this: a part that
# does not define it fails, never loops), then source PART. Arguments: PART
# Returns: 0 loaded, 1 not (said on stderr).
wandb_resume::_loads() {
  unset -f "${FUNCNAME[1]}"
  wandb_resume::_need "$1"
}

# A stub that fails as its callers expect a tool of ours to fail when its part cannot
# be loaded: return 1 (said on stderr). Arguments: PART ARGS... (the stub's).
wandb_resume::_lazy() {
  local _wr_fn=${FUNCNAME[1]}
  unset -f "$_wr_fn"
  wandb_resume::_need "$1" || return 1
  shift
  "$_wr_fn" "$@"
}

# The stubs. What a caller of each sees when its part cannot be loaded: the failure
# each reports for a tool of ours (error, st_status=fail, return 2 where its callers
# read those; return 1 for the rest).
wandb_resume::usage() { wandb_resume::_lazy usage; }
wandb_resume::_sync_cmd() { wandb_resume::_lazy sync "$@"; }
wandb_resume::_supervise() { wandb_resume::_lazy supervise "$@"; }
wandb_resume::_record_save_cmd() { wandb_resume::_lazy record "$@"; }
wandb_resume::_read_config() {
  wandb_resume::_loads config || {
    error="cannot load the library's config.bash"
    return 1
  }
  wandb_resume::_read_config "$@"
}
wandb_resume::_print_json() {
  wandb_resume::_loads json || {
    error="cannot load the library's json.bash"
    return 1
  }
  wandb_resume::_print_json "$@"
}
wandb_resume::_read_state() {
  wandb_resume::_loads state || {
    st_status=fail st_reason="cannot load the library's state.bash" error="cannot load the library's state.bash"
    return 0
  }
  wandb_resume::_read_state "$@"
}
wandb_resume::_check_weights() {
  wandb_resume::_loads weights || {
    error="cannot load the library's weights.bash"
    return 2
  }
  wandb_resume::_check_weights "$@"
}

#######################################
# Decide, log and export (see wandb_resume::usage for the options).
# Arguments: OPTIONS (no COMMAND: that is bin/train-resume's part).
# Outputs: logs on stderr; with --explain --json, the decision on stdout.
# Returns: 0 decided, 1 the decision failed (nothing exported), 2 usage error.
# Globals: reads RESUME_FROM_CHECKPOINT_DIR, WANDB_RESUME_SOURCES,
#   WANDB_RESUME_MODE, WANDB_RESUME_LANG, WANDB_DIR, WANDB_RUN_ID, LANG, LC_ALL,
#   SLURM_* and TRAIN_RESUME_JOB (the job, see wandb_resume::lock);
#   exports WANDB_RUN_ID, WANDB_RESUME, TRAIN_RESUME_CHECKPOINT,
#   TRAIN_RESUME_RUN_ID_SOURCE, TRAIN_RESUME_OUTPUT_DIR, TRAIN_RESUME_JOB,
#   TRAIN_RESUME_JOB_DIR; remembers what the decision's variables were before (the
#   first time, until wandb_resume::supervise puts them back). Unless --explain or
#   --no-lock, it takes the output dir's lock for this shell first (as
#   wandb_resume::lock), and shares its decision with the job's other tasks.
#######################################
wandb_resume::configure() {
  wandb_resume::_guest wandb_resume::_configure library "$@"
}

#######################################
# The body of bin/train-resume: as configure, plus --help, --version and a
# COMMAND, which it stores in _WANDB_RESUME_EXEC for the caller to exec; or, with
# `sync` first, wandb_resume::sync.
# Arguments: OPTIONS [--] [COMMAND [ARGS...]]
# Returns: as configure.
#######################################
wandb_resume::cli() {
  _WANDB_RESUME_EXEC=()
  if [[ ${1-} == sync ]]; then
    shift
    wandb_resume::_guest wandb_resume::_sync_cmd "$@"
    return
  fi
  wandb_resume::_guest wandb_resume::_configure cli "$@"
}

#######################################
# Upload the offline W&B run folders of an output dir with `wandb sync`, each run's
# segments in start-time order, skipping header-only files (sync.bash has the rules).
# Arguments: OUTPUT_DIR [--dry-run]
# Outputs: the plan as a table and the wandb sync command lines on stdout; warnings
#   on stderr.
# Returns: 0 synced (or planned), 1 a file unreadable or a call failed, 2 usage error.
# Globals: reads TRAIN_RESUME_PYTHON, TRAIN_RESUME_WANDB.
#######################################
wandb_resume::sync() {
  wandb_resume::_guest wandb_resume::_sync_cmd "$@"
}

#######################################
# Print the newest complete checkpoint-N under an output dir.
# Arguments: OUTPUT_DIR
# Outputs: its path on stdout (nothing when there is none); skips on stderr.
# Returns: 0 (also when there is none), 1 when the dir cannot be read.
#######################################
wandb_resume::latest_checkpoint() {
  wandb_resume::_guest wandb_resume::_latest_checkpoint_cmd "$@"
}

#######################################
# Print the run id found in the W&B run folders of a dir (a `wandb` folder).
# Arguments: DIR
# Outputs: the id on stdout; what was skipped on stderr.
# Returns: 0 found, 1 none found.
#######################################
wandb_resume::run_id_from_wandb_dir() {
  wandb_resume::_guest wandb_resume::_run_id_from_wandb_dir_cmd "$@"
}

#######################################
# Print the run id recorded in a trainer_state.json.
# Arguments: FILE
# Outputs: the id on stdout; what was skipped on stderr.
# Returns: 0 found, 1 none found or the file is unusable.
#######################################
wandb_resume::run_id_from_trainer_state() {
  wandb_resume::_guest wandb_resume::_run_id_from_trainer_state_cmd "$@"
}

#######################################
# Check a run id against W&B's rules.
# Arguments: ID
# Outputs: on stdout, why it is invalid (nothing when valid).
# Returns: 0 valid, 1 invalid.
#######################################
wandb_resume::check_run_id() {
  wandb_resume::_guest wandb_resume::_check_run_id_cmd "$@"
}

#######################################
# Record the save of each CHECKPOINT (what train_resume's callback runs after every
# save, once every rank has finished it): check it as the decision does and write
# <its parent>/.train-resume/saved/<its name>, the save's commit marker, holding what
# the decision would otherwise work out at every restart (lib/wandb_resume/record.bash;
# its format: saved.bash).
# Nothing for a CHECKPOINT without trainer_state.json.
# Arguments: CHECKPOINT...
# Outputs: on stderr, a warning for a checkpoint that is not complete as saved.
# Returns: 0 recorded (complete or not), 1 a record could not be written or a tool of
#   ours failed, 2 usage error.
#######################################
wandb_resume::record_save() {
  wandb_resume::_guest wandb_resume::_record_save_cmd "$@"
}

#######################################
# Take the lock of an output dir for this shell's job (what bin/train-resume and
# wandb_resume::configure do before deciding): the output dir belongs to one job
# (under SLURM: the job, array task and restart; elsewhere this shell's, inherited
# by its children as TRAIN_RESUME_JOB); this shell is registered as one of its
# processes until it ends (or the program it execs ends). State in the job state dir
# <physical parent of OUTPUT_DIR>/.train-resume/<name of OUTPUT_DIR>/.
# Arguments: OUTPUT_DIR
# Outputs: on failure, the job that holds it (host, job, live pid) on stderr.
# Returns: 0 locked (or this job holds it already), 1 another job's process is
#   alive or the lock cannot be taken, 2 usage error.
# Globals: reads SLURM_*, TRAIN_RESUME_JOB, TRAIN_RESUME_LOCK_WAIT; exports
#   TRAIN_RESUME_JOB, TRAIN_RESUME_JOB_DIR; sets _WANDB_RESUME_REGISTERED.
#######################################
wandb_resume::lock() {
  wandb_resume::_guest wandb_resume::_lock_cmd "$@"
}

#######################################
# Run a training command under supervision in a (SLURM) batch script: forward the
# pre-timeout or preemption signal to the processes of its tree that catch it
# (torchrun's workers, in sessions of their own, too) for a graceful save-and-stop,
# wait for all of them (in any shell mode; what is left after the drain is killed),
# then requeue the job unless the run is finished or SLURM_RESTART_COUNT reached the
# cap. How it ended: the exit status, the callback's end record written during this
# run (OUTPUT_DIR/.train-resume/ended, whatever status a launcher made of it), and the
# newest complete checkpoint (the decision's own reader). Finished: an end record of
# its own rule (max_steps, epochs, should_training_stop: EarlyStopping) with exit 0,
# or with a stop signal that landed at that end; without a record, exit 0 and the
# newest checkpoint at max_steps. Then DONE is written in the output dir and the run
# is never run or requeued again. Exit 128+N (stopped on signal N), or an end record
# of a signal stop, is preempted: requeued, never DONE. A failure of our tools
# reading the checkpoints is an error: neither DONE nor a requeue. When it returns,
# the decision's variables (WANDB_RUN_ID, WANDB_RESUME, WANDB_RESUME_FROM,
# TRAIN_RESUME_CHECKPOINT, TRAIN_RESUME_RUN_ID_SOURCE, TRAIN_RESUME_OUTPUT_DIR,
# PYTHONPATH) are as they were before wandb_resume::configure.
# COMMAND gets TRAIN_RESUME_STOP_SIGNALS=SIG,TERM.
# Arguments: [--output-dir DIR] [--max-restarts N] [--signal SIG] [--] COMMAND...
# Outputs: logs on stderr.
# Returns: COMMAND's exit status (128+N: it stopped on signal N, preempted); 0
#   when DONE was already there or is written; 1 a SLURM_* number is not a number
#   (nothing run), the checkpoints cannot be read (a tool of ours failed) or DONE
#   cannot be written; 2 usage error.
# Globals: reads SLURM_JOB_ID, SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID,
#   SLURM_RESTART_COUNT (digits only, never evaluated). Its traps for SIG and TERM
#   last until the requeue is done; the caller's are put back. Sets the decision's
#   variables back (above).
#######################################
wandb_resume::supervise() {
  local _wr_traps _wr_rc=0 _wr_aliases=''
  _wr_traps=$(trap -p)
  wandb_resume::_guest wandb_resume::_supervise "$@" || _wr_rc=$?
  # Put back the caller's traps: `trap -p` printed them as shell code (bash's own
  # output, not data from a file), read here with the caller's aliases off.
  trap - USR1 USR2 TERM INT HUP
  shopt -q expand_aliases && _wr_aliases=1 && shopt -u expand_aliases
  eval "$_wr_traps"
  [[ -n $_wr_aliases ]] && shopt -s expand_aliases
  unset _WANDB_RESUME_STOP
  return "$_wr_rc"
}

# Loaded: only now (a part that failed to load left this unset).
_WANDB_RESUME_LOADED=1
wandb_resume::_loaded 0
