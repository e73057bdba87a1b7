# shellcheck shell=bash
#
# lock.bash: one job per output dir. The lock of an output dir belongs to a job
# (job.bash: its key, its state dir), not to a process:
# - every task of the owning job, on any node, is let in; another job is refused
#   at once while any process of the owning job is alive, naming its host, job and
#   a live pid (or, with TRAIN_RESUME_LOCK_WAIT=SECONDS, after waiting that long for
#   it to end, logged);
# - a job is alive while any of its registered processes is: on this host, its pid
#   is there with the same start time and is not a zombie; on another host, its
#   procs/ file is still flock-ed. Dead registrations are removed. So a job whose
#   processes are all gone leaves no lock, whoever kept a copy of a descriptor (a
#   stray `sleep &` of a wrapper is not registered: it keeps nothing);
# - who registers: the launcher (bin/train-resume, or the shell that calls
#   wandb_resume::lock or wandb_resume::configure), whose pid the exec keeps, and
#   every Python process of the job (train_resume/job.py, from the hook), torchrun's
#   workers included;
# - deciding happens under the mutex (a short exclusive flock on JOB_DIR/lock,
#   waited for at most _WANDB_RESUME_MUTEX_WAIT s, logged): the first
#   task decides and writes the job's decision, the others use it. The mutex is
#   released before the exec.
# Part of lib/wandb_resume.sh.

# How long a task waits for the mutex while another decides (s): deciding takes
# well under a second, up to ~15 s for a huge trainer_state.json without a save record.
_WANDB_RESUME_MUTEX_WAIT=300

# Registrations of this shell: job state dir -> the descriptor of its procs/ file.
declare -gA _WANDB_RESUME_REGISTERED=()

# Take the mutex of the job state dir (exclusive flock on JOB_DIR/lock), waiting at
# most _WANDB_RESUME_MUTEX_WAIT s (logged). Sets: mutex_fd; error. Returns: 0, 1.
wandb_resume::_mutex_take() {
  local rc=0 out wait=$_WANDB_RESUME_MUTEX_WAIT
  if ! command -v flock >/dev/null 2>&1; then
    error="flock not found on PATH: cannot take the lock of $output_dir (install util-linux; or --no-lock, if you are sure no other job uses this output dir)"
    return 1
  fi
  if ! { exec {mutex_fd}>>"$job_dir/$_WANDB_RESUME_LOCK_FILE"; } 2>/dev/null; then
    mutex_fd=''
    error="cannot open the lock $job_dir/$_WANDB_RESUME_LOCK_FILE: $(wandb_resume::_permission_reason "$job_dir")"
    return 1
  fi
  flock -n -E 75 "$mutex_fd" 2>/dev/null || rc=$?
  if ((rc == 75)); then
    wandb_resume::_log info note "⏳ another train-resume is deciding for $output_dir ($job_dir/$_WANDB_RESUME_LOCK_FILE): waiting for it (at most $wait s)"
    rc=0
    flock -w "$wait" -E 75 "$mutex_fd" 2>/dev/null || rc=$?
    if ((rc == 75)); then
      wandb_resume::_mutex_release
      error="the lock $job_dir/$_WANDB_RESUME_LOCK_FILE was held for more than $wait s by another train-resume deciding for $output_dir: it may hang (on a stalled file system?)"
      return 1
    fi
  fi
  if ((rc != 0)); then
    out=$(flock -n "$mutex_fd" 2>&1)
    wandb_resume::_mutex_release
    error="cannot lock $job_dir/$_WANDB_RESUME_LOCK_FILE (flock: ${out//$'\n'/ }): the file system may not support flock (Lustre without -o flock, NFS mounted with nolock); --no-lock turns the check off"
    return 1
  fi
}

# Release the mutex (never kept through the exec). Reads and clears: mutex_fd.
wandb_resume::_mutex_release() {
  [[ -n ${mutex_fd:-} ]] || return 0
  exec {mutex_fd}>&-
  mutex_fd=''
}

# Is the process registered by FILE (JOB_DIR/procs/<pid>.<start>@<host>) alive? On
# this host: its pid, with that start time, not a zombie. On another host: its file is
# still flock-ed (by the process and what inherited its descriptor); a lock that
# cannot be tried counts as alive. Arguments: FILE. Reads: host.
# Returns: 0 alive, 1 dead (or not a registration).
wandb_resume::_registered_alive() {
  local name=${1##*/} fd rc=0
  [[ $name =~ ^([0-9]{1,18})\.([0-9]{1,20})@(.+)$ ]] || return 1
  if [[ ${BASH_REMATCH[3]} == "$host" ]]; then
    wandb_resume::_alive_here "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    return
  fi
  [[ -f $1 ]] || return 1
  { exec {fd}<>"$1"; } 2>/dev/null || return 0
  flock -n -x -E 75 "$fd" 2>/dev/null || rc=$?
  exec {fd}>&-
  ((rc != 0))
}

# Under the mutex: the processes registered for this output dir. Removes the dead
# ones; finds a live one of another job. Sets: other (its file, '' when none),
# other_key. Reads: job_dir, job_key, host.
wandb_resume::_other_job_alive() {
  local f key
  other='' other_key=''
  for f in "$job_dir/$_WANDB_RESUME_PROCS_DIR"/*; do
    key=''
    { IFS= read -r key <"$f"; } 2>/dev/null
    if wandb_resume::_registered_alive "$f"; then
      [[ $key == "$job_key" || -n $other ]] && continue
      other=$f other_key=${key:-unknown}
    else
      rm -f -- "$f" 2>/dev/null
    fi
  done
}

# Register this process (the launcher: an exec keeps its pid) with the job: its file
# JOB_DIR/procs/<pid>.<start>@<host> holds the job key and is flock-ed (shared) on a
# descriptor that stays open (through an exec, too). Reads: job_dir, job_key, host.
# Sets: _WANDB_RESUME_REGISTERED; error. Returns: 0, 1.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: pstate
wandb_resume::_register() {
  local start pstate name file fd
  wandb_resume::_proc_start "$BASHPID"
  name=$BASHPID.$start@$host file=$job_dir/$_WANDB_RESUME_PROCS_DIR/$BASHPID.$start@$host
  if ! { printf '%s\n' "$job_key" >"$file"; } 2>/dev/null; then
    error="cannot register with the job in $file: $(wandb_resume::_permission_reason "$job_dir/$_WANDB_RESUME_PROCS_DIR")"
    return 1
  fi
  fd=${_WANDB_RESUME_REGISTERED[$job_dir]:-}
  [[ $fd == "$name:"* && -e /dev/fd/${fd#*:} ]] && return 0
  if ! { exec {fd}>>"$file"; } 2>/dev/null || ! flock -s -w 10 "$fd" 2>/dev/null; then
    error="cannot lock $file (flock): --no-lock turns the check off"
    return 1
  fi
  _WANDB_RESUME_REGISTERED[$job_dir]=$name:$fd
}

# Join the job of the output dir: take the mutex (kept for the decision; the caller
# releases it), refuse while another job is alive (or wait for it, at most
# TRAIN_RESUME_LOCK_WAIT s, logged), take the ownership, register this process.
# Reads: output_dir. Sets: job_key, step_key, job_dir, host, mutex_fd; error.
# Returns: 0 joined, 1 refused or failed (error says why).
wandb_resume::_job_join() {
  local wait=0 other other_key owner='' now waited=0 f pid
  wandb_resume::_env_number TRAIN_RESUME_LOCK_WAIT 0 wait || return 1
  wandb_resume::_job_key || return 1
  wandb_resume::_job_dir "$output_dir" || return 1
  while :; do
    wandb_resume::_mutex_take || return 1
    { IFS= read -r owner <"$job_dir/$_WANDB_RESUME_JOB_FILE"; } 2>/dev/null
    # Claim first, then look (a process of the old job that registers meanwhile reads
    # the claim and stops, train_resume/job.py; or it is seen here): never both.
    if [[ ${owner%% *} != "$job_key" ]]; then
      printf -v now '%(%s)T' -1
      { printf '%s %s %s %s\n' "$job_key" "$host" "$BASHPID" "$now" >"$job_dir/.job.$BASHPID" &&
        mv -f -- "$job_dir/.job.$BASHPID" "$job_dir/$_WANDB_RESUME_JOB_FILE"; } 2>/dev/null
    fi
    wandb_resume::_other_job_alive
    [[ -n $other ]] || break
    # (our claim taken back: the owner stays who it was)
    if [[ -z $owner ]]; then
      rm -f -- "$job_dir/$_WANDB_RESUME_JOB_FILE" 2>/dev/null
    elif [[ ${owner%% *} != "$job_key" ]]; then
      { printf '%s\n' "$owner" >"$job_dir/.job.$BASHPID" && mv -f -- "$job_dir/.job.$BASHPID" "$job_dir/$_WANDB_RESUME_JOB_FILE"; } 2>/dev/null
    fi
    wandb_resume::_mutex_release
    f=${other##*/} pid=${f%%.*}
    if ((waited < wait)); then
      ((waited == 0)) && wandb_resume::_log info note "⏳ output dir $output_dir is in use by job $other_key (host ${f#*@}, pid $pid alive): waiting for it to end (at most $wait s, TRAIN_RESUME_LOCK_WAIT)"
      sleep 1
      ((waited += 1))
      continue
    fi
    local comm=''
    [[ ${f#*@} == "$host" ]] && { IFS= read -r comm <"/proc/$pid/comm"; } 2>/dev/null
    error="output dir $output_dir is in use by job $other_key (host ${f#*@}, pid $pid${comm:+ $comm} alive; $job_dir): two jobs would write into the same folders. Wait for it to end, or stop it; --no-lock turns the check off"
    ((wait > 0)) && error+=" (waited $wait s)"
    return 1
  done
  # (a decision the old owner left is another job's: never used, overwritten)
  wandb_resume::_register || {
    wandb_resume::_mutex_release
    return 1
  }
}

# Export the job for the processes it starts (TRAIN_RESUME_JOB: its key,
# TRAIN_RESUME_JOB_DIR: its state dir, where train_resume/job.py registers them);
# without a job (--no-lock), unset what an earlier decision exported.
# Reads: job_key, job_dir, explain.
wandb_resume::_export_job() {
  if [[ -n $job_dir ]]; then
    wandb_resume::_export TRAIN_RESUME_JOB "$job_key"
    wandb_resume::_export TRAIN_RESUME_JOB_DIR "$job_dir"
  else
    wandb_resume::_unset TRAIN_RESUME_JOB 'no lock: no job'
    wandb_resume::_unset TRAIN_RESUME_JOB_DIR 'no lock: no job'
  fi
}

# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: explain, step_key, quiet
wandb_resume::_lock_cmd() {
  local error='' quiet=0 explain=0 output_dir abs job_key='' step_key='' job_dir='' host='' mutex_fd='' rc=0
  (($# == 1)) && [[ -n $1 ]] || {
    printf 'usage: wandb_resume::lock OUTPUT_DIR\n' >&2
    return 2
  }
  wandb_resume::_absolute "$1"
  output_dir=$abs
  wandb_resume::_job_join || rc=1
  wandb_resume::_mutex_release
  if ((rc)); then
    wandb_resume::_log error error "$error"
    return 1
  fi
  quiet=1
  wandb_resume::_export_job
}
