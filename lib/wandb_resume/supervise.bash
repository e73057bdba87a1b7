# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # a part: the decision's state is shared through the locals of its caller (decide.bash), which shellcheck cannot follow across files
#
# supervise.bash: running the trainer under SLURM: forward the stop signal,
# requeue unless finished.
# Part of lib/wandb_resume.sh.

# The trap action: remember the signal; _supervise forwards it.
wandb_resume::_on_stop() {
  _WANDB_RESUME_STOP=$1
}

wandb_resume::_supervise() {
  local out='' max_restarts=5 sig=USR1 value take error='' quiet=0 child rc=0
  local before='' after='' l_path l_count c_reason st_status st_reason st_step job restarts
  local -a skipped=() warnings=() st_where=() st_type=() st_value=()
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
  [[ -z $error && $max_restarts != +([0-9]) ]] && error="--max-restarts needs a number, not: $max_restarts"
  [[ -z $error && $sig != @(USR1|USR2|TERM|INT|HUP) ]] && error="--signal must be USR1, USR2, TERM, INT or HUP, not: $sig"
  [[ -z $error ]] && (($# == 0)) && error='no COMMAND to supervise'
  if [[ -n $error ]]; then
    wandb_resume::_log error error "supervise: $error"
    return 2
  fi
  if [[ -n $out && -e $out/DONE ]]; then
    wandb_resume::_log info note "✅ $out/DONE exists: the run is finished; nothing to run, nothing to requeue"
    return 0
  fi
  [[ -n $out ]] && wandb_resume::_latest "$out" 2>/dev/null && before=$l_path
  job=${SLURM_JOB_ID:-}
  [[ -n ${SLURM_ARRAY_JOB_ID:-} && -n ${SLURM_ARRAY_TASK_ID:-} ]] && job=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
  restarts=${SLURM_RESTART_COUNT:-0}
  _WANDB_RESUME_STOP=''
  # shellcheck disable=SC2064 # the signal name is expanded now, on purpose
  trap "wandb_resume::_on_stop $sig" "$sig"
  trap 'wandb_resume::_on_stop TERM' TERM
  # Its own process group, so a forwarded signal reaches every process of a
  # launcher (torchrun, accelerate) as well.
  # (with the caller's LC_ALL, not the C locale this library works in)
  if [[ -n $_wr_lc_all_set ]]; then
    LC_ALL=$_wr_lc_all setsid "$@" &
  else
    env -u LC_ALL setsid "$@" &
  fi
  child=$!
  wandb_resume::_log info note "▶ supervising pid $child (job ${job:-none}, restart $restarts of at most $max_restarts): $*"
  while :; do
    wait "$child"
    rc=$?
    if [[ -n $_WANDB_RESUME_STOP ]] && kill -0 "$child" 2>/dev/null; then
      if [[ $_WANDB_RESUME_STOP != forwarded-* ]]; then
        wandb_resume::_log info note "⏸ got SIG$_WANDB_RESUME_STOP: asking the trainer to save and stop"
        kill -s "$_WANDB_RESUME_STOP" -- "-$child" 2>/dev/null || kill -s "$_WANDB_RESUME_STOP" "$child"
        _WANDB_RESUME_STOP=forwarded-$_WANDB_RESUME_STOP
      fi
      continue
    fi
    break
  done
  trap - "$sig" TERM
  [[ -n $out ]] && wandb_resume::_latest "$out" 2>/dev/null && after=$l_path
  if [[ -z $_WANDB_RESUME_STOP && $rc == 0 ]]; then
    if [[ -n $out ]]; then
      mkdir -p -- "$out" && printf 'finished %s, job %s\n' "$(date -u +%FT%TZ)" "${job:-none}" >"$out/DONE"
      wandb_resume::_log info note "✅ finished: wrote $out/DONE; this run will not be requeued"
    else
      wandb_resume::_log info note '✅ finished (no --output-dir: no DONE marker written)'
    fi
    return 0
  fi
  local why="crashed (exit $rc)"
  [[ -n $_WANDB_RESUME_STOP ]] && why="stopped by SIG${_WANDB_RESUME_STOP#forwarded-} (exit $rc)"
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
