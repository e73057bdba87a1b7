# shellcheck shell=bash
#
# wandb_resume.sh: decide whether a training job resumes, from which checkpoint,
# and which Weights & Biases run it continues; then export that decision.
#
# Source it from a job script (it changes nothing in your shell until you call it):
#
#   source /opt/train-resume/lib/wandb_resume.sh
#   wandb_resume::configure --output-dir "$OUT"     # decides, logs, exports
#
# This file is the one to source: it holds the load guard, the version and the
# public API, and sources its parts from lib/wandb_resume/ (one concern each; the
# decision reads as a sequence of steps in decide.bash).
#
# Public functions: wandb_resume::configure, wandb_resume::usage,
# wandb_resume::latest_checkpoint, wandb_resume::run_id_from_wandb_dir,
# wandb_resume::run_id_from_trainer_state, wandb_resume::check_run_id,
# wandb_resume::supervise.
# Everything named wandb_resume::_* or _WANDB_RESUME_* is private.
#
# Guest manners: sourcing this file and calling its functions leave the caller's
# `$-`, BASHOPTS, IFS, OPTIND, traps and working directory as they were; functions
# return, never exit; nothing read from a file or a folder name is ever evaluated
# (the one `eval` puts back the caller's traps from bash's own `trap -p`);
# checkpoints are only read, never written.

[[ -n ${_WANDB_RESUME_LOADED:-} ]] && return 0
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
# Each part is one concern (shellcheck follows them from here).
# shellcheck source=lib/wandb_resume/guest.bash
source "$_WANDB_RESUME_LIB/guest.bash" || return 1
# shellcheck source=lib/wandb_resume/messages.bash
source "$_WANDB_RESUME_LIB/messages.bash" || return 1
# shellcheck source=lib/wandb_resume/usage.bash
source "$_WANDB_RESUME_LIB/usage.bash" || return 1
# shellcheck source=lib/wandb_resume/options.bash
source "$_WANDB_RESUME_LIB/options.bash" || return 1
# shellcheck source=lib/wandb_resume/config.bash
source "$_WANDB_RESUME_LIB/config.bash" || return 1
# shellcheck source=lib/wandb_resume/state.bash
source "$_WANDB_RESUME_LIB/state.bash" || return 1
# shellcheck source=lib/wandb_resume/checkpoint.bash
source "$_WANDB_RESUME_LIB/checkpoint.bash" || return 1
# shellcheck source=lib/wandb_resume/run_id.bash
source "$_WANDB_RESUME_LIB/run_id.bash" || return 1
# shellcheck source=lib/wandb_resume/json.bash
source "$_WANDB_RESUME_LIB/json.bash" || return 1
# shellcheck source=lib/wandb_resume/export.bash
source "$_WANDB_RESUME_LIB/export.bash" || return 1
# shellcheck source=lib/wandb_resume/decide.bash
source "$_WANDB_RESUME_LIB/decide.bash" || return 1
# shellcheck source=lib/wandb_resume/supervise.bash
source "$_WANDB_RESUME_LIB/supervise.bash" || return 1
_WANDB_RESUME_LOADED=1

#######################################
# Decide, log and export (see wandb_resume::usage for the options).
# Arguments: OPTIONS (no COMMAND: that is bin/train-resume's part).
# Outputs: logs on stderr; with --explain --json, the decision on stdout.
# Returns: 0 decided, 1 the decision failed (nothing exported), 2 usage error.
# Globals: reads RESUME_FROM_CHECKPOINT_DIR, WANDB_RESUME_SOURCES,
#   WANDB_RESUME_MODE, WANDB_RESUME_LANG, WANDB_DIR, WANDB_RUN_ID, LANG, LC_ALL;
#   exports WANDB_RUN_ID, WANDB_RESUME, TRAIN_RESUME_CHECKPOINT,
#   TRAIN_RESUME_RUN_ID_SOURCE.
#######################################
wandb_resume::configure() {
  wandb_resume::_guest wandb_resume::_configure library "$@"
}

#######################################
# The body of bin/train-resume: as configure, plus --help, --version and a
# COMMAND, which it stores in _WANDB_RESUME_EXEC for the caller to exec.
# Arguments: OPTIONS [--] [COMMAND [ARGS...]]
# Returns: as configure.
#######################################
wandb_resume::cli() {
  _WANDB_RESUME_EXEC=()
  wandb_resume::_guest wandb_resume::_configure cli "$@"
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
# Run a training command under supervision in a (SLURM) batch script: forward the
# pre-timeout or preemption signal to it for a graceful save-and-stop, wait for it,
# then requeue the job unless the run is finished (DONE marker in the output dir)
# or SLURM_RESTART_COUNT reached the cap. A finished run writes DONE and is never
# run or requeued again.
# Arguments: [--output-dir DIR] [--max-restarts N] [--signal SIG] [--] COMMAND...
# Outputs: logs on stderr.
# Returns: COMMAND's exit status; 0 when DONE was already there; 2 usage error.
# Globals: reads SLURM_JOB_ID, SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID,
#   SLURM_RESTART_COUNT. Its traps for SIG and TERM last while it runs; the
#   caller's are put back.
#######################################
wandb_resume::supervise() {
  local _wr_traps _wr_rc=0
  _wr_traps=$(trap -p)
  wandb_resume::_guest wandb_resume::_supervise "$@" || _wr_rc=$?
  # Put back the caller's traps: `trap -p` printed them as shell code (bash's own
  # output, not data from a file).
  trap - USR1 USR2 TERM INT HUP
  eval "$_wr_traps"
  unset _WANDB_RESUME_STOP
  return "$_wr_rc"
}
