# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # a part: the decision's state is shared through the locals of its caller (decide.bash), which shellcheck cannot follow across files
#
# supervise.bash: running the trainer under SLURM: forward the stop signal, wait
# for the trainer's whole process group, requeue unless it finished.
# Part of lib/wandb_resume.sh.
#
# The exit status of the trainer is what it reports:
#   0          it returned from training; finished only when the newest checkpoint's
#              trainer_state.json has global_step >= max_steps (or there is no
#              checkpoint at all and no stop signal was forwarded): DONE is written.
#   128+N      it stopped on signal N (the callback saves, then exits so: USR1 → 138,
#              TERM → 143): preempted, requeued, never DONE.
#   other      crashed: requeued, never DONE.
# Every requeue counts against --max-restarts (SLURM_RESTART_COUNT).

# The signals that ask the trainer to save and stop (also the --signal choices).
_WANDB_RESUME_STOP_SIGNALS='@(USR1|USR2|TERM|INT|HUP)'
# How long (s) to wait for the rest of the trainer's process group after it exited
# (torchrun's workers may still be saving when torchrun itself is gone).
_WANDB_RESUME_DRAIN=60

# The trap action: remember the signal; _supervise forwards it.
wandb_resume::_on_stop() {
  _WANDB_RESUME_STOP=$1
}

# Read a whole number from the environment: digits only, never evaluated.
# Arguments: NAME DEFAULT. Sets `number` (caller's local): the value, base 10.
# Returns: 0, or 1 with `error` set when the value is not a number.
wandb_resume::_env_number() {
  local name=$1 v
  v=${!name-$2}
  if [[ $v != +([0-9]) || ${#v} -gt 18 ]]; then
    error="$name='$v': not a number"
    return 1
  fi
  number=$((10#$v))
}

# Whether the run in OUT is finished, from its newest complete checkpoint PATH
# (empty: none) and what _latest read of its trainer_state.json (st_step, st_max).
# Arguments: PATH. Sets `why` when it is not. Returns: 0 finished, 1 not finished,
# 2 no checkpoint to tell.
wandb_resume::_finished() {
  local path=$1 step=$st_step max=$st_max
  [[ -n $path ]] || return 2
  if [[ $step != +([0-9]) || $max != +([0-9]) || ${#step} -gt 18 || ${#max} -gt 18 ]]; then
    why="exited 0, but ${path##*/}/trainer_state.json has no whole global_step and max_steps: cannot tell that it finished"
    return 1
  fi
  ((10#$step >= 10#$max)) && return 0
  why="exited 0 before the end: ${path##*/} is at step $step of max_steps $max"
  return 1
}

# Wait (at most _WANDB_RESUME_DRAIN s) until no process of group PGID is left;
# a TERM meanwhile (the scheduler's last call) ends the wait at once.
# Arguments: PGID
wandb_resume::_drain() {
  local group=$1 i
  kill -0 -- "-$group" 2>/dev/null || return 0
  wandb_resume::_log info note "⏳ the trainer (pid $group) exited; waiting for the rest of its process group"
  for ((i = 0; i < _WANDB_RESUME_DRAIN * 5; i++)); do
    [[ $_WANDB_RESUME_STOP == TERM ]] && break
    sleep 0.2
    kill -0 -- "-$group" 2>/dev/null || return 0
  done
  wandb_resume::_warn "processes of the trainer's group $group are still running; going on"
}

wandb_resume::_supervise() {
  local out='' max_restarts=5 sig=USR1 value take error='' quiet=0 child rc=0 number
  local before='' after='' l_path l_count l_numbered c_reason st_status st_reason st_step st_max job restarts
  local stop='' why name finished=0
  local -a skipped=() warnings=() st_where=() st_type=() st_value=() st_wstep=() launch=()
  while (($#)); do
    case $1 in
      -o | --output-dir | --output-dir=*)
        wandb_resume::_optarg --output-dir "$@" || break
        out=$value && shift "$take"
        ;;
      --max-restarts | --max-restarts=*)
        wandb_resume::_optarg --max-restarts "$@" || break
        max_restarts=$value && shift "$take"
        ;;
      --signal | --signal=*)
        wandb_resume::_optarg --signal "$@" || break
        sig=${value#SIG} && shift "$take"
        ;;
      -q | --quiet) quiet=1 && shift ;;
      --) shift && break ;;
      -?*) error="unknown option: $1" && break ;;
      *) break ;;
    esac
  done
  [[ -z $error && ($max_restarts != +([0-9]) || ${#max_restarts} -gt 18) ]] &&
    error="--max-restarts needs a number, not: $max_restarts"
  # shellcheck disable=SC2053 # the right-hand side is a pattern, on purpose
  [[ -z $error && $sig != $_WANDB_RESUME_STOP_SIGNALS ]] && error="--signal must be USR1, USR2, TERM, INT or HUP, not: $sig"
  [[ -z $error ]] && (($# == 0)) && error='no COMMAND to supervise'
  if [[ -n $error ]]; then
    wandb_resume::_log error error "supervise: $error"
    return 2
  fi
  max_restarts=$((10#$max_restarts))
  if [[ -n $out && -e $out/DONE ]]; then
    wandb_resume::_log info note "✅ $out/DONE exists: the run is finished; nothing to run, nothing to requeue"
    return 0
  fi
  # SLURM's numbers, checked before anything runs.
  job=''
  if [[ -n ${SLURM_ARRAY_JOB_ID:-} && -n ${SLURM_ARRAY_TASK_ID:-} ]]; then
    wandb_resume::_env_number SLURM_ARRAY_JOB_ID '' && job=$number &&
      wandb_resume::_env_number SLURM_ARRAY_TASK_ID '' && job+=_$number
  elif [[ -n ${SLURM_JOB_ID:-} ]]; then
    wandb_resume::_env_number SLURM_JOB_ID '' && job=$number
  fi
  [[ -z $error ]] && wandb_resume::_env_number SLURM_RESTART_COUNT 0 && restarts=$number
  if [[ -n $error ]]; then
    wandb_resume::_log error error "supervise: $error; nothing run"
    return 1
  fi
  [[ -n $out ]] && wandb_resume::_latest "$out" 2>/dev/null && before=$l_path
  _WANDB_RESUME_STOP=''
  # The traps last until the requeue is done (a TERM in the wrap-up must not kill
  # this shell before it); the caller's are put back by wandb_resume::supervise.
  # shellcheck disable=SC2064 # the signal name is expanded now, on purpose
  trap "wandb_resume::_on_stop $sig" "$sig"
  trap 'wandb_resume::_on_stop TERM' TERM
  # The trainer leads its own process group, so that a forwarded signal reaches
  # every process of a launcher (torchrun, accelerate) as well. Under job control
  # (set -m, interactive shells) bash gives a background job its own group; setsid
  # would fork there and return at once, so it is used only without job control.
  [[ $- == *m* ]] || launch=(setsid)
  # (with the caller's LC_ALL, not the C locale this library works in)
  if [[ -n $_wr_lc_all_set ]]; then
    LC_ALL=$_wr_lc_all "${launch[@]}" "$@" &
  else
    env -u LC_ALL "${launch[@]}" "$@" &
  fi
  child=$!
  wandb_resume::_log info note "▶ supervising pid $child (job ${job:-none}, restart $restarts of at most $max_restarts): $*"
  while :; do
    wait "$child"
    rc=$?
    # A trapped signal ends `wait` early: the child is still there.
    kill -0 "$child" 2>/dev/null || break
    if [[ -n $_WANDB_RESUME_STOP && $_WANDB_RESUME_STOP != forwarded-* ]]; then
      wandb_resume::_log info note "⏸ got SIG$_WANDB_RESUME_STOP: asking the trainer to save and stop"
      kill -s "$_WANDB_RESUME_STOP" -- "-$child" 2>/dev/null || kill -s "$_WANDB_RESUME_STOP" "$child"
      _WANDB_RESUME_STOP=forwarded-$_WANDB_RESUME_STOP
    fi
  done
  [[ $_WANDB_RESUME_STOP == forwarded-* ]] && stop=${_WANDB_RESUME_STOP#forwarded-}
  _WANDB_RESUME_STOP=''
  wandb_resume::_drain "$child"
  [[ -n $out ]] && wandb_resume::_latest "$out" 2>/dev/null && after=$l_path
  if ((rc == 0)); then
    why="stopped by SIG$stop (exit 0)"
    if [[ -z $out ]]; then
      [[ -z $stop ]] && finished=1
    else
      wandb_resume::_finished "$after"
      case $? in
        0) finished=1 ;;
        2) [[ -z $stop ]] && finished=1 ;;
      esac
    fi
  elif ((rc > 128 && rc <= 128 + 64)) && name=$(kill -l "$((rc - 128))" 2>/dev/null); then
    name=${name#SIG}
    # shellcheck disable=SC2053 # a pattern, on purpose
    if [[ $name == $_WANDB_RESUME_STOP_SIGNALS ]]; then
      why="preempted: the trainer saved and stopped on SIG$name (exit $rc)"
      [[ -n $stop ]] && why="stopped by SIG$stop (exit $rc)"
    else
      why="killed by SIG$name (exit $rc)"
    fi
  else
    why="crashed (exit $rc)"
  fi
  if ((finished)); then
    if [[ -z $out ]]; then
      wandb_resume::_log info note '✅ finished (no --output-dir: no DONE marker written)'
      return 0
    fi
    local stamp
    stamp=$(date -u +%FT%TZ)
    if ! { mkdir -p -- "$out" && printf 'finished %s, job %s\n' "$stamp" "${job:-none}" >"$out/DONE"; } 2>/dev/null; then
      local reason='mkdir or write failed (disk full?)'
      [[ -d $out && ! -w $out ]] && reason=$(wandb_resume::_permission_reason "$out")
      wandb_resume::_log error error "finished, but cannot write $out/DONE: $reason; a later start would train again from ${after:-the start}"
      return 1
    fi
    wandb_resume::_log info note "✅ finished: wrote $out/DONE; this run will not be requeued"
    return 0
  fi
  if [[ -n $out ]]; then
    if [[ -n $after && $after != "$before" ]]; then
      why+=", newest checkpoint now ${after##*/}"
    else
      why+=", no progress: newest checkpoint still ${before:-none}"
      [[ -n $before ]] && why=${why%"$before"}${before##*/}
    fi
  fi
  if [[ -z $job ]]; then
    wandb_resume::_log info note "⏹ $why; not under SLURM: not requeued"
  elif ((restarts >= max_restarts)); then
    wandb_resume::_log error error "$why; not requeued: SLURM_RESTART_COUNT=$restarts reached --max-restarts $max_restarts"
  elif scontrol requeue "$job"; then
    wandb_resume::_log info note "🔁 $why; requeued job $job (restart $((restarts + 1)) of at most $max_restarts)"
  else
    wandb_resume::_log error error "$why; scontrol requeue $job failed"
  fi
  return "$rc"
}
