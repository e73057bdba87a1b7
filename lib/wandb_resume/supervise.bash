# shellcheck shell=bash
#
# supervise.bash: running the trainer under SLURM: forward the stop signal to every
# process of the trainer that takes it, wait for all of them, requeue unless it
# finished.
# Part of lib/wandb_resume.sh.
#
# How the trainer ended is what it reports:
#   OUTPUT_DIR/.train-resume/ended, written during this run (the callback's end
#              record, at every train end; _read_ended):
#              reason=signal (the ranks saved and stopped on a stop signal):
#              preempted, requeued, never DONE, whatever status a launcher
#              (torchrun: 1) made of its ranks' 128+N;
#              reason=max_steps|epochs|should_training_stop (it ended by its own
#              rule: EarlyStopping short of max_steps too) and exit 0, or a stop
#              signal that landed at that end whatever the status: finished, DONE;
#              with another status: crashed after training (in the script's own
#              steps after train()): requeued.
#   exit 0     without such a record (no callback): finished only when the newest
#              checkpoint's trainer_state.json is at its end (_at_max_steps) (or there
#              is no checkpoint at all and no stop signal was forwarded): DONE.
#   128+N      it stopped on signal N (the callback saves, then exits so: USR1 → 138,
#              TERM → 143): preempted, requeued, never DONE.
#   other      crashed: requeued, never DONE.
# The checkpoints are read with the decision's own reader (_latest): when one of our
# tools fails there, it is an error (status 1): neither DONE nor a requeue.
# When it returns, the decision's variables are put back as they were before
# wandb_resume::configure (export.bash, _restore_decision).
# Every requeue counts against --max-restarts (SLURM_RESTART_COUNT).

# The signals that ask the trainer to save and stop (also the --signal choices), as
# a pattern (from shared.env: STOP_SIGNAL_CHOICES).
_WANDB_RESUME_STOP_PATTERN="@(${_WANDB_RESUME_STOP_SIGNAL_CHOICES//,/|})"
# How long (s) to wait for the rest of the trainer's processes after it exited
# (torchrun's workers may still be saving when torchrun itself is gone); then what is
# left is killed. (A default: this part is sourced when first used, and a caller, the
# tests, may have set it before.)
: "${_WANDB_RESUME_DRAIN:=60}"

# The trap action: remember the signal; _supervise forwards it.
wandb_resume::_on_stop() {
  _WANDB_RESUME_STOP=$1
}

# Whether the run in OUT is finished, from its newest complete checkpoint PATH
# (empty: none) and what _latest read of its trainer_state.json (st_step, st_max):
# for a trainer that exited 0 without an end record of this run (no callback); at
# its end as the decision tells it (wandb_resume::_at_max_steps: max_steps > 0).
# Arguments: PATH. Sets `why`. Returns: 0 finished, 1 not finished, 2 no checkpoint
# to tell.
wandb_resume::_finished() {
  local path=$1 step=$st_step max=$st_max
  if [[ -z $path ]]; then
    why='exit 0, and no checkpoint to tell by'
    return 2
  fi
  if [[ $step != +([0-9]) || $max != +([0-9]) || ${#step} -gt 18 || ${#max} -gt 18 ]]; then
    why="exited 0, but ${path##*/}/trainer_state.json has no whole global_step and max_steps: cannot tell that it finished"
    return 1
  fi
  if wandb_resume::_at_max_steps "$step" "$max"; then
    why="exit 0, and ${path##*/} is at step $step of max_steps $max"
    return 0
  fi
  why="exited 0 before the end: ${path##*/} is at step $step of max_steps $max"
  return 1
}

# The processes below PID, found through their parents in /proc: a process in a
# session or group of its own (torchrun's workers) is found too. Arguments: PID.
# Sets: kids (parent pid -> " child child..."), tree (their pids, PID not included).
wandb_resume::_tree() {
  local f stat rest pid c
  local -a todo=("$1")
  kids=() tree=()
  for f in /proc/[0-9]*/stat; do
    stat=''
    { IFS= read -r -d '' stat <"$f"; } 2>/dev/null
    rest=${stat##*) }
    [[ $rest != "$stat" ]] || continue
    rest=${rest#* }
    pid=${f#/proc/}
    kids[${rest%% *}]+=" ${pid%/stat}"
  done
  while ((${#todo[@]})); do
    pid=${todo[-1]}
    unset 'todo[-1]'
    for c in ${kids[$pid]-}; do
      tree+=("$c")
      todo+=("$c")
    done
  done
}

# Does process PID catch signal number NUM (its bit in SigCgt, /proc/PID/status)?
# Arguments: PID NUM. Returns: 0 it does, 1 not (or no such process).
wandb_resume::_catches() {
  local line mask=''
  while IFS= read -r line; do
    [[ $line == SigCgt:* ]] && mask=${line#SigCgt:} && break
  done 2>/dev/null <"/proc/$1/status"
  mask=${mask//[[:space:]]/}
  [[ $mask == +([0-9a-fA-F]) && ${#mask} -le 16 ]] && (((16#$mask >> ($2 - 1)) & 1))
}

# Forward stop signal SIG to the trainer: to every process of its tree that catches
# it (SigCgt), found through /proc whatever its session (torchrun's workers), but not
# below a process of the job that catches it (one registered in TRAIN_RESUME_JOB_DIR:
# a rank, or torchrun): it handles the signal for what runs below it, and those are
# its helpers (W&B's service process, which catches TERM too: it would end the rank's
# W&B run; data loader workers). So with torchrun and USR1 (which torchrun does not
# catch: it would die of it) the ranks get it; with TERM torchrun does, and stops its
# ranks with TERM itself. When no process catches it, LEADER gets it.
# Arguments: SIG LEADER. Adds to `seen` (pid:start of every process of the tree: the
# drain waits for them). Logs.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: pstate
wandb_resume::_forward() {
  local sig=$1 leader=$2 num pid c start pstate host jobdir=${TRAIN_RESUME_JOB_DIR:-}
  local -A kids=()
  local -a tree=() to=() todo=("$leader")
  num=$(kill -l "$sig" 2>/dev/null) || num=''
  wandb_resume::_host
  wandb_resume::_tree "$leader"
  for pid in "$leader" "${tree[@]}"; do
    wandb_resume::_proc_start "$pid" && seen+=("$pid:$start")
  done
  while [[ $num == +([0-9]) ]] && ((${#todo[@]})); do
    pid=${todo[-1]}
    unset 'todo[-1]'
    if wandb_resume::_catches "$pid" "$num"; then
      to+=("$pid")
      [[ -n $jobdir ]] && wandb_resume::_proc_start "$pid" && [[ -e $jobdir/$_WANDB_RESUME_PROCS_DIR/$pid.$start@$host ]] && continue
    fi
    for c in ${kids[$pid]-}; do todo+=("$c"); done
  done
  if ((${#to[@]})); then
    wandb_resume::_log info note "⏸ got SIG$sig: asking the trainer to save and stop (SIG$sig to pid ${to[*]}: the processes of the trainer that catch it)"
  else
    to=("$leader")
    wandb_resume::_log info note "⏸ got SIG$sig: asking the trainer to save and stop (SIG$sig to pid $leader: no process of the trainer catches it)"
  fi
  kill -s "$sig" -- "${to[@]}" 2>/dev/null
}

# The trainer's processes still alive: of its process group, and those seen when a
# signal was forwarded (workers in sessions of their own). Arguments: PGID.
# Reads: seen. Sets: left (pids; "group PGID" for the group). Returns: 0 some are.
wandb_resume::_left() {
  local s
  left=()
  for s in "${seen[@]}"; do
    wandb_resume::_alive_here "${s%%:*}" "${s#*:}" && left+=("${s%%:*}")
  done
  kill -0 -- "-$1" 2>/dev/null && left+=("group $1")
  ((${#left[@]}))
}

# Wait (at most _WANDB_RESUME_DRAIN s) until no process of the trainer is left (its
# group, and what _forward saw); a TERM meanwhile (the scheduler's last call) ends the
# wait at once. What is left then is killed (SIGKILL): no process of this job outlives
# it, to train beside the next one. Arguments: PGID. Reads: seen.
wandb_resume::_drain() {
  local group=$1 i s
  local -a left=()
  wandb_resume::_left "$group" || return 0
  wandb_resume::_log info note "⏳ the trainer (pid $group) exited; waiting up to $_WANDB_RESUME_DRAIN s for the rest of its processes (${left[*]})"
  for ((i = 0; i < _WANDB_RESUME_DRAIN * 5; i++)); do
    [[ $_WANDB_RESUME_STOP == TERM ]] && break
    sleep 0.2
    wandb_resume::_left "$group" || return 0
  done
  wandb_resume::_left "$group" || return 0
  kill -s KILL -- "-$group" 2>/dev/null
  for s in "${seen[@]}"; do
    wandb_resume::_alive_here "${s%%:*}" "${s#*:}" && kill -s KILL "${s%%:*}" 2>/dev/null
  done
  wandb_resume::_warn "processes of the trainer were still running (${left[*]}); killed them (SIGKILL), so that none outlives this job"
}

# The newest complete checkpoint of OUTPUT_DIR, read by the decision's own reader
# (wandb_resume::_latest: bounded, every failure of our tools an error), quietly: the
# next decision logs what it skips. Arguments: OUTPUT_DIR. Sets: l_path, st_step,
# st_max; error. Returns: 0 (l_path '' when there is none), 1 it cannot be told
# (error says why: jq missing or crashing, the checkpoint it would take unreadable).
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: l_count, l_numbered
wandb_resume::_supervise_latest() {
  local quiet=1 l_count=0 l_numbered=0
  wandb_resume::_latest "$1"
}

# supervise: run, then put back the decision's variables (whatever happened: when it
# returns, they are as before wandb_resume::configure). Arguments: as supervise.
wandb_resume::_supervise() {
  local quiet=0 rc=0 # (quiet: set by _supervise_run's -q)
  wandb_resume::_supervise_run "$@" || rc=$?
  wandb_resume::_restore_decision
  return "$rc"
}

# Run COMMAND under supervision (wandb_resume::supervise), step by step: the options,
# DONE already there, SLURM's numbers, the checkpoints before, start, wait (forwarding
# a stop signal), drain, how it ended, then DONE or the requeue. Sets: quiet (-q, the
# caller's). Returns: as supervise.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: c_reason, st_status, st_reason, ended_job, ended_time, skipped, warnings, st_where, st_type, st_value, st_wstep
wandb_resume::_supervise_run() {
  local out='' max_restarts=5 sig=${_WANDB_RESUME_STOP_SIGNALS%%,*} error='' child=''
  local rc=0 before='' after='' l_path='' c_reason='' st_status='' st_reason='' st_step='' st_max=''
  local job='' restarts=0 stop='' why='' finished=0 ended_before='' fresh=0 shift_by=0
  local ended_reason='' ended_signal='' ended_step='' ended_max='' ended_job='' ended_time=''
  local ended_text='' ended_why=''
  local -a skipped=() warnings=() st_where=() st_type=() st_value=() st_wstep=() seen=()
  wandb_resume::_supervise_options "$@" || return
  shift "$shift_by"
  if [[ -n $out && -e $out/$_WANDB_RESUME_DONE_FILE ]]; then
    wandb_resume::_log info note "✅ $out/$_WANDB_RESUME_DONE_FILE exists: the run is finished; nothing to run, nothing to requeue"
    return 0
  fi
  # SLURM's numbers, checked before anything runs.
  if ! wandb_resume::_slurm_job; then
    wandb_resume::_log error error "supervise: $error; nothing run"
    return 1
  fi
  if [[ -n $out ]] && ! wandb_resume::_supervise_latest "$out"; then
    wandb_resume::_log error error "supervise: cannot read the checkpoints in $out: $error; nothing run"
    return 1
  fi
  before=$l_path
  wandb_resume::_read_ended "$out"
  ended_before=$ended_text
  wandb_resume::_supervise_start "$@"
  wandb_resume::_supervise_wait
  wandb_resume::_drain "$child"
  # How it ended: the checkpoints, read as the decision reads them (a failure of our
  # tools is an error, never "no checkpoint"), and the trainer's end record.
  l_path=''
  if [[ -n $out ]] && ! wandb_resume::_supervise_latest "$out"; then
    wandb_resume::_log error error "supervise: cannot tell how the trainer ended (it exited $rc): $error; neither DONE written nor requeued (fix that, then start the job again)"
    return 1
  fi
  after=$l_path
  wandb_resume::_read_ended "$out"
  # Written during this run (an earlier run's record is not this run's).
  [[ -n $ended_text && $ended_text != "$ended_before" ]] && fresh=1
  wandb_resume::_how_it_ended
  if ((finished)); then
    wandb_resume::_write_done
    return
  fi
  wandb_resume::_requeue
  return "$rc"
}

# supervise's options. Arguments: as supervise. Sets: out, max_restarts, sig, quiet,
# shift_by (how many arguments they took: COMMAND follows). Returns: 0, 2 usage
# error (logged).
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: quiet
wandb_resume::_supervise_options() {
  local value take n=$# choices=${_WANDB_RESUME_STOP_SIGNAL_CHOICES//,/, }
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
  [[ -z $error && $sig != $_WANDB_RESUME_STOP_PATTERN ]] && error="--signal must be ${choices%, *} or ${choices##*, }, not: $sig"
  [[ -z $error ]] && (($# == 0)) && error='no COMMAND to supervise'
  if [[ -n $error ]]; then
    wandb_resume::_log error error "supervise: $error"
    return 2
  fi
  max_restarts=$((10#$max_restarts))
  shift_by=$((n - $#))
}

# Start COMMAND in the background, as the leader of its own process group, with the
# stop signals trapped (SIG and TERM). Arguments: COMMAND... Reads: sig, job,
# restarts, max_restarts. Sets: child (its pid).
# shellcheck disable=SC2154 # shared through dynamic scope, which shellcheck does not follow; read here, a caller's: _wr_lc_all
wandb_resume::_supervise_start() {
  local stops=$sig
  local -a launch=()
  # What the trainer's callback takes as a stop signal: what this forwards, and TERM.
  [[ $sig == TERM ]] || stops+=,TERM
  _WANDB_RESUME_STOP=''
  # The traps last until the requeue is done (a TERM in the wrap-up must not kill
  # this shell before it); the caller's are put back by wandb_resume::supervise.
  # shellcheck disable=SC2064 # the signal name is expanded now, on purpose
  trap "wandb_resume::_on_stop $sig" "$sig"
  trap 'wandb_resume::_on_stop TERM' TERM
  # The trainer leads its own process group (the drain waits for the group). Under job
  # control (set -m, interactive shells) bash gives a background job its own group;
  # setsid would fork there and return at once, so it is used only without job control.
  [[ $- == *m* ]] || launch=(setsid)
  # (with the caller's LC_ALL, not the C locale this library works in)
  if [[ -n $_wr_lc_all_set ]]; then
    LC_ALL=$_wr_lc_all TRAIN_RESUME_STOP_SIGNALS=$stops "${launch[@]}" "$@" &
  else
    TRAIN_RESUME_STOP_SIGNALS=$stops env -u LC_ALL "${launch[@]}" "$@" &
  fi
  child=$!
  wandb_resume::_log info note "▶ supervising pid $child (job ${job:-none}, restart $restarts of at most $max_restarts): $*"
}

# Wait for the trainer (pid `child`), forwarding a stop signal that comes meanwhile.
# Sets: rc (its exit status), stop (the signal forwarded, '' none), seen.
wandb_resume::_supervise_wait() {
  while :; do
    wait "$child"
    rc=$?
    # A trapped signal ends `wait` early: the child is still there.
    kill -0 "$child" 2>/dev/null || break
    if [[ -n $_WANDB_RESUME_STOP && $_WANDB_RESUME_STOP != forwarded-* ]]; then
      wandb_resume::_forward "$_WANDB_RESUME_STOP" "$child"
      _WANDB_RESUME_STOP=forwarded-$_WANDB_RESUME_STOP
    fi
  done
  [[ $_WANDB_RESUME_STOP == forwarded-* ]] && stop=${_WANDB_RESUME_STOP#forwarded-}
  _WANDB_RESUME_STOP=''
}

# How the trainer ended (supervise's header has the table): from rc, stop, the end
# record (ended_*, fresh) and the newest checkpoint (after). Sets: finished (1: write
# DONE), why (for the log line).
wandb_resume::_how_it_ended() {
  local name='' code
  ((rc > 128 && rc <= 128 + 64)) && name=$(kill -l "$((rc - 128))" 2>/dev/null) && name=${name#SIG}
  # shellcheck disable=SC2053 # the right-hand sides are patterns, on purpose
  if ((fresh)) && [[ $ended_reason == "$_WANDB_RESUME_ENDED_STOPPED" && $name != "$ended_signal" ]]; then
    # The ranks saved and stopped on a stop signal (the callback's record), and their
    # launcher (torchrun: 1) made another status of it: preempted all the same.
    why="preempted: the trainer saved${ended_step:+ checkpoint-$ended_step} and stopped on SIG${ended_signal:-?}"
    [[ -n $stop ]] && why="stopped by SIG$stop: the trainer saved${ended_step:+ checkpoint-$ended_step} and stopped"
    why+=" (exit $rc from its launcher; recorded in $out/$_WANDB_RESUME_STATE_DIR/$_WANDB_RESUME_ENDED_FILE)"
  elif ((fresh)) && [[ -n $ended_why ]] && { ((rc == 0)) || [[ -n $stop || $name == $_WANDB_RESUME_STOP_PATTERN ]]; }; then
    # It ended by its own rule (max_steps, its epochs, EarlyStopping): finished, also
    # when a stop signal landed at that end and made a launcher exit otherwise.
    finished=1
    why="$ended_why; exit $rc${stop:+ after SIG$stop}; recorded in $out/$_WANDB_RESUME_STATE_DIR/$_WANDB_RESUME_ENDED_FILE"
  elif ((rc == 0)); then
    # Without a checkpoint to tell by, a forwarded stop signal says it did not finish.
    code=2
    [[ -z $out ]] || wandb_resume::_finished "$after" || code=$?
    case $code in
      0) finished=1 ;;
      2) [[ -z $stop ]] && finished=1 || why="stopped by SIG$stop (exit 0)" ;;
    esac
  elif [[ -n $name ]]; then
    if [[ $name == $_WANDB_RESUME_STOP_PATTERN ]]; then
      why="preempted: the trainer saved and stopped on SIG$name (exit $rc)"
      [[ -n $stop ]] && why="stopped by SIG$stop (exit $rc)"
    else
      why="killed by SIG$name (exit $rc)"
    fi
  else
    why="crashed (exit $rc)"
  fi
  # A crash after training had ended (in the script's own steps after train()).
  ((fresh && ! finished)) && [[ -n $ended_why ]] && why+=" after training had ended ($ended_why)"
  return 0
}

# Finished: write OUT/DONE (none without --output-dir). Reads: out, why, job, after.
# Returns: 0 written (or no OUT), 1 it cannot be written.
wandb_resume::_write_done() {
  local stamp reason done=$out/$_WANDB_RESUME_DONE_FILE
  if [[ -z $out ]]; then
    wandb_resume::_log info note '✅ finished (no --output-dir: no DONE marker written)'
    return 0
  fi
  stamp=$(date -u +%FT%TZ)
  if ! { mkdir -p -- "$out" && printf 'finished %s, job %s\n' "$stamp" "${job:-none}" >"$done"; } 2>/dev/null; then
    reason='mkdir or write failed (disk full?)'
    [[ -d $out && ! -w $out ]] && reason=$(wandb_resume::_permission_reason "$out")
    wandb_resume::_log error error "finished, but cannot write $done: $reason; a later start would train again from ${after:-the start}"
    return 1
  fi
  wandb_resume::_log info note "✅ finished: wrote $done; this run will not be requeued: $why"
}

# Not finished: requeue the SLURM job (scontrol requeue) unless there is none or
# SLURM_RESTART_COUNT reached --max-restarts; log why either way. Reads: out, why,
# before, after, job, restarts, max_restarts.
wandb_resume::_requeue() {
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
}
