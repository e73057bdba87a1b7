# shellcheck shell=bash
#
# job.bash: what a job is, where its state lives, and the decision its tasks share.
#
# A job is many processes (one per GPU, one task per node). It is named by its key:
#   slurm-<job>[_<array task>]-r<restart count>[@<cluster>]   under SLURM (a requeued
#                                 instance is another job), from SLURM's variables;
#   pid-<pid>.<start>@<host>      elsewhere: the process that made the first decision
#                                 (its start time, /proc/PID/stat field 22, tells it
#                                 from a later process with the same pid), inherited
#                                 by its children as TRAIN_RESUME_JOB while it lives.
# Its state lives in the job state dir of the output dir OUT, outside OUT (a new run
# leaves OUT as it found it): <physical parent of OUT>/.train-resume/<name of OUT>/,
# or OUT/.train-resume/ when the parent is not writable. There:
#   lock      the mutex around deciding (a short flock; lock.bash)
#   job       the job that owns the output dir: "<key> <host> <pid> <time>"
#   procs/    one file per registered process of that job, <pid>.<start>@<host>,
#             holding the job key, flock-ed (shared) by its process (lock.bash)
#   decision  the job's decision, NUL-separated fields (never evaluated): the tasks
#             of one job that start together use the one the first of them made
# Part of lib/wandb_resume.sh.

# The fields of a decision file, in order (its first field is this tag).
_WANDB_RESUME_DECISION_TAG=train-resume-decision-1

# Read a whole number from the environment: digits only, never evaluated.
# Arguments: NAME DEFAULT OUT. Sets the variable named OUT: the value, base 10.
# Returns: 0, or 1 with `error` set when the value is not a number.
wandb_resume::_env_number() {
  local name=$1 v
  v=${!name-$2}
  if [[ $v != +([0-9]) || ${#v} -gt 18 ]]; then
    error="$name='$v': not a number"
    return 1
  fi
  printf -v "$3" '%s' "$((10#$v))"
}

# The SLURM job as scontrol names it (<job>, or <array job>_<task>) and its restart
# count, from SLURM's variables (digits only). Sets: job ('' outside SLURM), restarts.
# Returns: 0, 1 with `error` set when one is not a number.
wandb_resume::_slurm_job() {
  local task
  job='' restarts=0
  if [[ -n ${SLURM_ARRAY_JOB_ID:-} && -n ${SLURM_ARRAY_TASK_ID:-} ]]; then
    wandb_resume::_env_number SLURM_ARRAY_JOB_ID '' job || return 1
    wandb_resume::_env_number SLURM_ARRAY_TASK_ID '' task || return 1
    job+=_$task
  elif [[ -n ${SLURM_JOB_ID:-} ]]; then
    wandb_resume::_env_number SLURM_JOB_ID '' job || return 1
  fi
  wandb_resume::_env_number SLURM_RESTART_COUNT 0 restarts
}

# This host's name as the kernel gives it (Python's os.uname().nodename), never
# $HOSTNAME (the environment can set that); bytes other than [A-Za-z0-9._-] become _
# (train_resume/job.py does the same). Sets: host
wandb_resume::_host() {
  host=''
  { IFS= read -r host </proc/sys/kernel/hostname; } 2>/dev/null || host=$(exec uname -n 2>/dev/null)
  host=${host//[!A-Za-z0-9._-]/_}
  [[ -n $host ]] || host=unknown
}

# The start time of process PID (clock ticks after boot: /proc/PID/stat field 22)
# and its state (Z: a zombie). Arguments: PID. Sets: start, pstate ('' when there is
# no such process). Returns: 0, 1 no such process.
wandb_resume::_proc_start() {
  local stat='' rest
  start='' pstate=''
  { IFS= read -r -d '' stat <"/proc/$1/stat"; } 2>/dev/null
  [[ $stat == *') '* ]] || return 1
  # After the command name (which may hold spaces and parentheses): field 3 on.
  rest=${stat##*) }
  pstate=${rest%% *}
  local -a f
  read -r -a f <<<"$rest"
  start=${f[19]:-}
  [[ $start == +([0-9]) ]] || start=''
  [[ -n $start ]]
}

# Is the process PID with start time START alive on this host (there, with that
# start time, not a zombie)? Arguments: PID START. Returns 0 alive, 1 not.
wandb_resume::_alive_here() {
  local start pstate
  wandb_resume::_proc_start "$1" && [[ $start == "$2" && $pstate != Z ]]
}

# The job this process belongs to. Under SLURM, from SLURM's variables; otherwise the
# inherited TRAIN_RESUME_JOB while the process that made it is alive on this host,
# else a new key made from this process.
# Sets: job_key, step_key (SLURM_STEP_ID, or none), host. Returns: 0, 1 with `error`
# set when a SLURM variable is not a number.
wandb_resume::_job_key() {
  local job restarts start pstate cluster
  wandb_resume::_host
  step_key=none
  [[ ${SLURM_STEP_ID:-} == +([0-9]) && ${#SLURM_STEP_ID} -le 18 ]] && step_key=$((10#$SLURM_STEP_ID))
  if [[ -n ${SLURM_JOB_ID:-} ]]; then
    wandb_resume::_slurm_job || return 1
    job_key=slurm-$job-r$restarts
    cluster=${SLURM_CLUSTER_NAME:-}
    cluster=${cluster//[!A-Za-z0-9._-]/_}
    [[ -z $cluster ]] || job_key+=@$cluster
    return 0
  fi
  if [[ ${TRAIN_RESUME_JOB:-} =~ ^pid-([0-9]{1,18})\.([0-9]{1,20})@(.+)$ && ${BASH_REMATCH[3]} == "$host" ]] &&
    wandb_resume::_alive_here "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"; then
    job_key=$TRAIN_RESUME_JOB
    return 0
  fi
  wandb_resume::_proc_start "$BASHPID"
  job_key=pid-$BASHPID.$start@$host
}

# The job state dir of OUTPUT_DIR (absolute): <physical parent>/.train-resume/<name>/,
# or OUTPUT_DIR/.train-resume/ when that cannot be made (the parent not writable);
# made here with its procs/ folder. The parent of OUTPUT_DIR is made when missing
# (the trainer would make it), never OUTPUT_DIR itself but for the fallback.
# Arguments: OUTPUT_DIR. Sets: job_dir; error. Returns: 0, 1 cannot be made.
wandb_resume::_job_dir() {
  local out=${1%/} parent name phys
  name=${out##*/} parent=${out%/*}
  [[ -n $parent ]] || parent=/
  job_dir=''
  if [[ -n $name ]] && { [[ -d $parent ]] || mkdir -p -- "$parent"; } 2>/dev/null &&
    phys=$(cd -P -- "$parent" 2>/dev/null && pwd -P) && [[ -w $phys ]] &&
    mkdir -p -- "${phys%/}/$_WANDB_RESUME_STATE_DIR/$name/$_WANDB_RESUME_PROCS_DIR" 2>/dev/null; then
    job_dir=${phys%/}/$_WANDB_RESUME_STATE_DIR/$name
    return 0
  fi
  if mkdir -p -- "$out/$_WANDB_RESUME_STATE_DIR/$_WANDB_RESUME_PROCS_DIR" 2>/dev/null; then
    job_dir=$out/$_WANDB_RESUME_STATE_DIR
    return 0
  fi
  local where=$parent
  [[ -d $out ]] && where=$out
  error="cannot make the job state dir of $1 (in ${parent%/}/$_WANDB_RESUME_STATE_DIR/ or $out/$_WANDB_RESUME_STATE_DIR/): $(wandb_resume::_permission_reason "$where")"
  return 1
}

# What the tasks of one job compare before using a decision one of them made: the
# checkpoint-* names of the output dir and its failed-load records, and the options
# and variables the decision reads. Sets: listing, inputs.
# shellcheck disable=SC2154 # shared through dynamic scope, which shellcheck does not follow; read here, a caller's: output_dir, checkpoint, config, wandb_dir, resume_mode, sources, rewind, allow_weights_only
wandb_resume::_job_inputs() {
  local -a c=("$output_dir"/checkpoint-*) f=("$output_dir/$_WANDB_RESUME_STATE_DIR/$_WANDB_RESUME_FAILED_DIR"/*)
  local IFS=/
  listing="${c[*]##*/}//${f[*]##*/}"
  IFS=' '
  printf -v inputs '%q ' "$checkpoint" "$config" "$wandb_dir" "$resume_mode" "$sources" "$rewind" \
    "$allow_weights_only" "${RESUME_FROM_CHECKPOINT_DIR-}" "${WANDB_DIR-}" "${WANDB_RUN_ID-}"
}

# Write the decision for the other tasks of this job (atomically: a temporary file,
# then mv). Reads: the decision's locals, job_dir, job_key, step_key.
# Returns: 0, 1 with `error` set.
wandb_resume::_job_write_decision() {
  local listing inputs tmp=$job_dir/.decision.$BASHPID
  [[ -n $job_dir ]] || return 0
  wandb_resume::_job_inputs
  if ! { printf '%s\0' "$_WANDB_RESUME_DECISION_TAG" "$job_key" "$step_key" "$inputs" "$listing" \
    "$host" "$BASHPID" "$mode" "$ckpt" "$run_id" "$run_id_source" "$wandb_resume" "$resume_from" \
    "$output_dir" >"$tmp" && mv -f -- "$tmp" "$job_dir/$_WANDB_RESUME_DECISION_FILE"; } 2>/dev/null; then
    rm -f -- "$tmp" 2>/dev/null
    error="cannot write the job's decision in $job_dir/$_WANDB_RESUME_DECISION_FILE: $(wandb_resume::_permission_reason "$job_dir")"
    return 1
  fi
}

# Use the decision another task of this job made, when there is one for this job
# and step, made on the same checkpoints with the same options. Under a SLURM step,
# a task that sees other checkpoints than the one that decided is an error (a node
# whose view of the shared file system differs must not train from another
# checkpoint); elsewhere (one job's sequential starts) it decides anew. A task that
# cannot see the chosen checkpoint is an error.
# Reads: job_dir, job_key, step_key, output_dir and the options. Sets: reused (1 when
# used), the decision's locals (mode, ckpt, run_id, run_id_source, wandb_resume,
# resume_from); error. Returns: 0, 1 an error (logged by the caller).
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: reused
wandb_resume::_job_read_decision() {
  local listing inputs what
  local -a d=()
  reused=0
  [[ -n $job_dir && -f $job_dir/$_WANDB_RESUME_DECISION_FILE ]] || return 0
  mapfile -d '' -t d <"$job_dir/$_WANDB_RESUME_DECISION_FILE" 2>/dev/null
  # Another job's, another step's, or not one we wrote: decided anew.
  ((${#d[@]} == 14)) && [[ ${d[0]} == "$_WANDB_RESUME_DECISION_TAG" && ${d[1]} == "$job_key" ]] || return 0
  [[ ${d[2]} == "$step_key" && ${d[7]} == @(resume|new) && ${d[11]} == @(must|allow|) ]] || return 0
  [[ ${d[7]} == new || ${d[8]} == /* ]] || return 0
  local id_problem=''
  [[ -z ${d[9]} ]] || wandb_resume::_id_problem "${d[9]}"
  [[ -z $id_problem ]] || return 0
  wandb_resume::_job_inputs
  if [[ ${d[3]} != "$inputs" || ${d[4]} != "$listing" ]]; then
    [[ $step_key == none ]] && return 0
    error="task of job $job_key step $step_key on $host: the job's decision, made by pid ${d[6]} on ${d[5]}, "
    if [[ ${d[3]} != "$inputs" ]]; then
      error+="was made with other options or variables (--checkpoint, --config, --sources, RESUME_FROM_CHECKPOINT_DIR, WANDB_DIR, WANDB_RUN_ID, ...) than this task's: the tasks of one step must run the same command. Nothing run"
    else
      error+="saw other checkpoints in $output_dir than this task sees; the tasks of one job must see the same output dir (a file system shared by every node, up to date). Nothing run"
    fi
    return 1
  fi
  mode=${d[7]} ckpt=${d[8]} run_id=${d[9]} run_id_source=${d[10]} wandb_resume=${d[11]} resume_from=${d[12]}
  if [[ $mode == resume && ! (-d $ckpt && -r $ckpt/trainer_state.json) ]]; then
    what='no such folder'
    if [[ -e $ckpt && ! -d $ckpt ]]; then
      what='not a folder'
    elif [[ -e $ckpt ]]; then
      what=$(wandb_resume::_permission_reason "$ckpt")
    fi
    error="the job's decision (made by pid ${d[6]} on ${d[5]}) resumes from $ckpt, but this task on $host cannot see it ($what): the output dir must be on a file system every node of the job shares. Nothing run"
    return 1
  fi
  reused=1
  wandb_resume::_log info note "🤝 using the decision of job $job_key, made by pid ${d[6]} on ${d[5]} (same job and step, same checkpoints)"
  detail="the decision of job $job_key"
  if [[ $mode == new ]]; then
    wandb_resume::_log info new "$detail"
  else
    wandb_resume::_log info resume "$ckpt" "$detail"
  fi
}
