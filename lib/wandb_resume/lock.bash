# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # a part: the decision's state is shared through the locals of its caller (decide.bash), which shellcheck cannot follow across files
#
# lock.bash: one writer per output dir. An exclusive flock(2) on
# OUTPUT_DIR/.train-resume/lock, taken before deciding, on a descriptor that stays
# open through the exec of the trainer: the lock lasts exactly as long as the
# trainer (and any child that inherits the descriptor). The holder is named in
# OUTPUT_DIR/.train-resume/lock.holder ("pid=<pid> host=<host> job=<SLURM_JOB_ID|->").
# Part of lib/wandb_resume.sh.

# Take the lock of an output dir for this process, or say who holds it.
# Arguments: OUTPUT_DIR. Sets: error (on failure), _WANDB_RESUME_LOCK_FD (global:
#   the open descriptor, kept until the process ends or execs a program that ends).
# Returns: 0 locked (also when this process already holds it), 1 held by another
#   or cannot be taken (error says why).
wandb_resume::_lock() {
  local dir=${1%/}/.train-resume fd rc holder='' host out
  if [[ -n ${_WANDB_RESUME_LOCK_FD:-} && ${_WANDB_RESUME_LOCK_DIR:-} == "$dir" ]]; then
    return 0
  fi
  if ! command -v flock >/dev/null 2>&1; then
    error="flock not found on PATH: cannot take the lock of $1 (install util-linux; or --no-lock, if you are sure no other job uses this output dir)"
    return 1
  fi
  if ! out=$(mkdir -p -- "$dir" 2>&1) || ! exec {fd}>>"$dir/lock"; then
    error="cannot create the lock $dir/lock: ${out:-$(wandb_resume::_permission_reason "${dir%/*}")}"
    return 1
  fi 2>/dev/null
  rc=0
  out=$(flock -n -E 75 "$fd" 2>&1) || rc=$?
  if ((rc == 75)); then
    exec {fd}>&-
    IFS= read -r -N 300 holder <"$dir/lock.holder" 2>/dev/null
    holder=${holder%%$'\n'*}
    holder=${holder//[[:cntrl:]]/?}
    error="output dir $1 is in use by another train-resume (${holder:-holder unknown}; lock $dir/lock): two writers would pick checkpoints and write into the same folders. Wait for it to end, or stop it; --no-lock turns the check off"
    return 1
  elif ((rc != 0)); then
    exec {fd}>&-
    error="cannot lock $dir/lock (flock: ${out//$'\n'/ }): the file system may not support flock (Lustre without -o flock, NFS mounted with nolock); --no-lock turns the check off"
    return 1
  fi
  host=${HOSTNAME:-$(uname -n 2>/dev/null)}
  printf 'pid=%s host=%s job=%s\n' "$$" "${host:--}" "${SLURM_JOB_ID:--}" >"$dir/lock.holder.$$" 2>/dev/null &&
    mv -f -- "$dir/lock.holder.$$" "$dir/lock.holder" 2>/dev/null
  _WANDB_RESUME_LOCK_FD=$fd _WANDB_RESUME_LOCK_DIR=$dir
  return 0
}

wandb_resume::_lock_cmd() {
  local error='' quiet=0
  (($# == 1)) || {
    printf 'usage: wandb_resume::lock OUTPUT_DIR\n' >&2
    return 2
  }
  wandb_resume::_lock "$1" || {
    wandb_resume::_log error error "$error"
    return 1
  }
}
