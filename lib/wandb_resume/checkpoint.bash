# shellcheck shell=bash
#
# checkpoint.bash: what makes a checkpoint complete, and the newest complete
# checkpoint-N of an output dir.
# Part of lib/wandb_resume.sh.

# Step 1a: which output dir, and which checkpoint is asked for. The first of
# --checkpoint, RESUME_FROM_CHECKPOINT_DIR, resume_from_checkpoint in --config, and
# `latest` (the newest complete one); the output dir is --output-dir, else output_dir
# in --config, else the parent of a checkpoint named.
# Reads: checkpoint, config, output_dir. Sets: output_dir (absolute), want, how,
#   cfg_resume, cfg_output_dir, parent_gone (the output dir's parent when it does
#   not exist either); logs the output dir.
# Returns: 0, 1 the config cannot be read, 2 no output dir to look in (both logged).
wandb_resume::_choose_output_dir() {
  local out_how abs
  if [[ -n $config ]]; then
    wandb_resume::_read_config "$config" || {
      wandb_resume::_log error error "$error"
      return 1
    }
  fi
  if [[ -n $checkpoint ]]; then
    want=$checkpoint how=--checkpoint
  elif [[ -n ${RESUME_FROM_CHECKPOINT_DIR:-} ]]; then
    want=$RESUME_FROM_CHECKPOINT_DIR how=RESUME_FROM_CHECKPOINT_DIR
  elif [[ -n $cfg_resume ]]; then
    want=$cfg_resume how="resume_from_checkpoint in $config"
  else
    want=latest how=default
  fi
  out_how=--output-dir
  if [[ -z $output_dir && -n $cfg_output_dir ]]; then
    output_dir=$cfg_output_dir out_how="output_dir in $config"
  fi
  if [[ -z $output_dir && $want != @(latest|none) ]]; then
    output_dir=${want%/}
    output_dir=${output_dir%/*}
    [[ $output_dir == "${want%/}" ]] && output_dir=.
    out_how='the checkpoint'"'"'s parent'
  fi
  if [[ -z $output_dir && $want == latest ]]; then
    wandb_resume::_log error error "no output dir: give --output-dir DIR (or output_dir in --config FILE)"
    return 2
  fi
  if [[ -n $output_dir ]]; then
    wandb_resume::_absolute "$output_dir"
    output_dir=$abs
    wandb_resume::_log info output_dir "$output_dir ($out_how)"
    [[ -d ${output_dir%/*}/ ]] || parent_gone=${output_dir%/*}
  fi
}

# Step 1: which checkpoint (as asked for: _choose_output_dir).
# Reads: want, how, output_dir, forget_failed. Sets: mode (resume|new), ckpt,
#   detail, the st_* of the chosen checkpoint; logs the choice.
# Returns: 0, 1 the decision failed (logged).
# shellcheck disable=SC2154 # shared through dynamic scope, which shellcheck does not follow; read here, a caller's: forget_failed, detail
wandb_resume::_choose_checkpoint() {
  local abs='' l_path='' l_count=0 l_numbered=0 c_reason=''
  if [[ -n $output_dir ]] && ((forget_failed)); then
    wandb_resume::_forget_failed "$output_dir" || {
      wandb_resume::_log error error "$error"
      return 1
    }
  fi

  case $want in
    none)
      mode=new
      wandb_resume::_detail d_ignored "$how"
      [[ -z $output_dir ]] || wandb_resume::_warn_none_beside "$output_dir"
      ;;
    latest) wandb_resume::_choose_latest || return ;;
    *) wandb_resume::_choose_named || return ;;
  esac
  if [[ $mode == new ]]; then
    wandb_resume::_log info new "$detail"
  else
    wandb_resume::_log info resume "$ckpt" "$detail"
    wandb_resume::_warn_finished
  fi
}

# Step 1, latest (the default): the newest complete checkpoint of the output dir; a
# new run when it holds none; an error when it holds checkpoints none of which is
# complete. Reads: output_dir, parent_gone. Sets: mode, ckpt, detail, the st_*.
# Returns: 0, 1 the decision failed (logged).
wandb_resume::_choose_latest() {
  if ! wandb_resume::_latest "$output_dir"; then
    wandb_resume::_log error error "$error"
    return 1
  fi
  if [[ -n $l_path ]]; then
    mode=resume ckpt=$l_path
    wandb_resume::_detail d_newest "$output_dir"
  elif ((l_numbered > 0)); then
    # Never start over silently: a new run would write its checkpoint-N among
    # the old ones, and the next decision would mix the two runs.
    local i list=''
    for ((i = 0; i < ${#skipped[@]}; i += 2)); do
      list+=$'\n'"  - ${skipped[i]}: ${skipped[i + 1]}"
    done
    wandb_resume::_log error error "$l_numbered checkpoint-N folder(s) in $output_dir, none complete:$list"$'\n'"Nothing was exported or run. To start over on purpose, ignoring them: train-resume --checkpoint none -o $output_dir ... (better: a new --output-dir); to resume one anyway, fix it or name it with --checkpoint PATH."
    return 1
  elif [[ -d $output_dir ]]; then
    mode=new
    wandb_resume::_detail d_none_in "$output_dir"
    wandb_resume::_warn_accelerate_layout "$output_dir"
  else
    mode=new
    wandb_resume::_detail d_not_yet "$output_dir"
    # A mistyped parent would silently become a new run, the whole path created.
    [[ -z $parent_gone ]] ||
      wandb_resume::_warn "the output dir's parent $parent_gone does not exist either: a new run creates the whole path (mistyped? a resume needs the dir that holds the checkpoints)"
  fi
  return 0
}

# Step 1, a checkpoint named (--checkpoint PATH, or the config's): it, complete, or an
# error (never a fallback). Reads: want, how, output_dir. Sets: mode, ckpt, detail,
# abs, c_reason, the st_*. Returns: 0, 1 the decision failed (logged).
wandb_resume::_choose_named() {
  wandb_resume::_absolute "$want"
  wandb_resume::_check_checkpoint "$abs"
  case $? in
    1 | 3 | 4)
      # A relative path is taken from the current directory, not the output dir.
      [[ $want == /* || ! -e $output_dir/$want || $c_reason != 'no such file or directory' ]] ||
        c_reason+=" (a relative path is taken from the current directory, $PWD; $output_dir/$want exists: give that path)"
      wandb_resume::_log error error "checkpoint $abs (from $how) cannot be used: $c_reason"
      return 1
      ;;
    2)
      wandb_resume::_log error error "$error"
      return 1
      ;;
  esac
  mode=resume ckpt=$abs
  wandb_resume::_detail d_chosen "$how"
  return 0
}

# The finished rule of a trainer_state (shared.env; the callback's "max_steps" end
# reason is the same): at its end when max_steps > 0 and global_step >= max_steps.
# Arguments: STEP MAX. Returns: 0 at its end, 1 not, or not whole numbers.
wandb_resume::_at_max_steps() {
  [[ $1 == +([0-9]) && $2 == +([0-9]) && ${#1} -le 18 && ${#2} -le 18 ]] &&
    ((10#$2 > 0 && 10#$1 >= 10#$2))
}

# A run that already ended (a requeue after the end, the same command started
# again): said, not refused, since the command may ask for more steps. Ended: the
# chosen checkpoint is at its max_steps, or it is the step where the trainer's end
# record (OUTPUT_DIR/.train-resume/ended, wandb_resume::_read_ended) says the run
# stopped by its own rule before max_steps (should_training_stop: EarlyStopping).
# Reads: ckpt, output_dir, st_step, st_max. Appends to warnings.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: ended_signal, ended_max, ended_job, ended_time, ended_text
wandb_resume::_warn_finished() {
  local ended_reason='' ended_signal='' ended_step='' ended_max='' ended_job='' ended_time=''
  local ended_text='' ended_why=''
  [[ ${ckpt%/*} == "$output_dir" ]] && wandb_resume::_read_ended "$output_dir"
  if [[ $ended_reason == should_training_stop && $ended_step == "$st_step" ]]; then
    wandb_resume::_warn "${ckpt##*/} is where that run ended: $ended_why, recorded in $output_dir/$_WANDB_RESUME_STATE_DIR/$_WANDB_RESUME_ENDED_FILE. It already finished: resuming it trains past its own stopping rule until that rule stops it again (EarlyStoppingCallback: at its next evaluation)"
  elif wandb_resume::_at_max_steps "$st_step" "$st_max"; then
    wandb_resume::_warn "${ckpt##*/} is at global_step $st_step of its max_steps $st_max: that run already finished; resuming it trains on only if the command asks for more steps"
  fi
}

# The end record the trainer's callback leaves in OUTPUT_DIR/.train-resume/ended
# (train_resume/callback.py record_end): why training ended. One NAME=VALUE line per
# field, read as data (never evaluated; at most 20 lines of at most 300 bytes):
# reason (signal: stopped on a stop signal, preempted; max_steps, epochs,
# should_training_stop: ended by its own rule, finished), signal (a stop signal's
# name; beside a finished reason, one that landed at the run's end), step, max_steps,
# job (the job key), time (seconds since the epoch); other names, and a value not of
# its form, are left out. The one reader of the record (supervise and the decision).
# Arguments: OUTPUT_DIR. Sets: ended_reason, ended_signal, ended_step, ended_max,
# ended_job, ended_time, ended_text (all of it), ended_why (what a finished run's
# record says, for a log line; '' unless the reason is one of a finished run); ''
# when there is none.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: ended_job, ended_time
wandb_resume::_read_ended() {
  local line k v n=0 at file=$1/$_WANDB_RESUME_STATE_DIR/$_WANDB_RESUME_ENDED_FILE
  ended_reason='' ended_signal='' ended_step='' ended_max='' ended_job='' ended_time=''
  ended_text='' ended_why=''
  [[ -n $1 && -f $file ]] || return 0
  while ((n++ < 20)) && IFS= read -r -n 300 line; do
    ended_text+=$line$'\n'
    [[ $line == ?*=* ]] || continue
    k=${line%%=*} v=${line#*=}
    case $k in
      reason) [[ $v == +([a-z_]) ]] && ended_reason=$v ;;
      signal) [[ $v == +([A-Z0-9]) ]] && ended_signal=$v ;;
      step) [[ $v == +([0-9]) && ${#v} -le 18 ]] && ended_step=$v ;;
      max_steps) [[ $v == +([0-9]) && ${#v} -le 18 ]] && ended_max=$v ;;
      job) [[ $v == +([A-Za-z0-9._@-]) ]] && ended_job=$v ;;
      time) [[ $v == +([0-9]) && ${#v} -le 18 ]] && ended_time=$v ;;
    esac
  done 2>/dev/null <"$file"
  # A finished run's reasons are shared.env's ENDED_FINISHED (the callback writes them).
  [[ ,$_WANDB_RESUME_ENDED_FINISHED, == *",$ended_reason,"* ]] || return 0
  at="step ${ended_step:-?}${ended_max:+ of max_steps $ended_max}"
  case $ended_reason in
    max_steps) ended_why="the trainer reached max_steps ($at)" ;;
    epochs) ended_why="the trainer ran its epochs ($at)" ;;
    should_training_stop)
      ended_why="the trainer stopped by its own rule before max_steps ($at: should_training_stop, set by a callback such as EarlyStoppingCallback)"
      ;;
    *) ended_why="the trainer ended by its own rule ($ended_reason, $at)" ;;
  esac
  [[ -z $ended_signal ]] || ended_why+="; SIG$ended_signal landed at that end"
  return 0
}

# --checkpoint none in an output dir that still holds complete checkpoints: the new
# run saves its checkpoint-N among them, and the next plain restart (latest) takes
# the newest complete one of all, the earlier run's, while the new run is behind it.
# One warning line naming them and what that restart will do. Arguments: OUTPUT_DIR
wandb_resume::_warn_none_beside() {
  local text=''
  wandb_resume::_none_beside "$1"
  [[ -z $text ]] || wandb_resume::_warn "$text"
}

# The text of _warn_none_beside's warning ("" when there is nothing to say), from a
# quiet look for the latest (its skips and warnings are not the decision's).
# Arguments: OUTPUT_DIR. Sets: text.
wandb_resume::_none_beside() {
  local out=${1%/} l_path='' l_count=0 l_numbered=0 c_reason error='' quiet=1 name f
  local st_status='' st_reason='' st_step='' st_max='' len max=0 i n=0 names=''
  local -a skipped=() warnings=() st_where=() st_type=() st_value=() st_wstep=() good=()
  local GLOBSORT=name number='@(0|[1-9]*([0-9]))'
  [[ -d $out ]] || return 0
  # shellcheck disable=SC2206 # the pattern is meant to expand
  good=("$out"/checkpoint-$number)
  ((${#good[@]})) || return 0
  # The newest five by step (as _latest orders them), and how many more.
  for name in "${good[@]##*/checkpoint-}"; do
    ((${#name} > max)) && max=${#name}
  done
  for ((len = max; len > 0 && n < 5; len--)); do
    for ((i = ${#good[@]} - 1; i >= 0 && n < 5; i--)); do
      f=${good[i]##*/}
      name=${f#checkpoint-}
      ((${#name} == len)) || continue
      names+=${names:+, }$f n=$((n + 1))
    done
  done
  ((${#good[@]} > n)) && names+=" and $((${#good[@]} - n)) more"
  if ! wandb_resume::_latest "$out"; then
    text="--checkpoint none: $out still holds checkpoint folders of an earlier run ($names), which could not be checked ($error); the next plain restart (without --checkpoint none) may resume one of them instead of this new run. To keep the runs apart: a new --output-dir, or move them away"
  elif [[ -n $l_path ]]; then
    text="--checkpoint none: $out still holds checkpoints of an earlier run ($names); this new run saves its checkpoint-N among them, and the next plain restart (without --checkpoint none) resumes the newest complete one, ${l_path##*/} of the earlier run, until this run has saved past step $st_step. To keep the runs apart: a new --output-dir, or move them away"
  fi
}

# Check that DIR is a usable checkpoint; when its name is checkpoint-N, that its
# global_step is N. Under a save record that vouches for it and still matches
# (saved.bash), the record answers; otherwise its files do (_check_files).
# Arguments: DIR
# Sets: c_reason ("" when complete) and the st_* of its trainer_state.json (st_kb:
#   the checkpoint's size in KiB when its record answered, else ""); error when one
#   of our tools failed.
# Returns: 0 complete, 1 not (c_reason), 2 a tool of ours failed (error), 3 we may
#   not read it or a file in it (c_reason: owner, mode, user), 4 a file in it
#   vanished while it was checked (c_reason; _latest also takes 1-3 for a vanish
#   when DIR itself is gone).
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: st_project, st_entity
wandb_resume::_check_checkpoint() {
  local dir=$1 rc w_only=0
  local -a st_project=() st_entity=()
  [[ -n ${st_kb+set} ]] || local st_kb
  c_reason='' st_kb=''
  if [[ -L $dir && ! -e $dir ]]; then
    c_reason='a symlink that leads nowhere (dangling, or a loop)'
  elif [[ ! -e $dir ]]; then
    c_reason='no such file or directory'
  elif [[ ! -d $dir ]]; then
    c_reason='not a directory'
  elif [[ ! -r $dir || ! -x $dir ]]; then
    c_reason=$(wandb_resume::_permission_reason "$dir")
    return 3
  elif wandb_resume::_failed_record "$dir"; then
    :
  elif [[ ! -e $dir/trainer_state.json ]] && wandb_resume::_accelerate_folder "$dir"; then
    :
  elif wandb_resume::_record_holds "$dir"; then
    ((w_only && ! ${allow_weights_only:-0})) && c_reason=$_WANDB_RESUME_WEIGHTS_ONLY
  else
    wandb_resume::_check_files "$dir"
    rc=$?
    ((rc >= 2)) && return "$rc"
  fi
  [[ -z $c_reason ]]
}

# The files of checkpoint DIR: its trainer_state.json (read by state.bash), its
# global_step against its name, a save that did not finish (_unfinished_save; not
# when STAMP is given: the record is being written), the weights and state files
# (weights.bash). STAMP: the state's identity just after the trainer saved it
# (wandb_resume::record_save). Arguments: DIR [STAMP]
# Sets: c_reason, the st_*, error, w_only (weights-only, when allow_weights_only).
# Returns: as _check_checkpoint.
wandb_resume::_check_files() {
  local dir=$1 stamp=${2:-} name
  wandb_resume::_read_state "$dir/trainer_state.json" "$stamp"
  case $st_status in
    ok) ;;
    fail) return 2 ;;
    denied) c_reason=$st_reason && return 3 ;;
    vanished) c_reason=$st_reason && return 4 ;;
    *) c_reason=$st_reason && return 1 ;;
  esac
  name=${dir%/}
  name=${name##*/}
  if [[ $name =~ ^checkpoint-([0-9]+)$ && ${BASH_REMATCH[1]} != "$st_step" ]]; then
    c_reason="global_step is $st_step, but the folder is $name (a copy, or a half-written save?)"
    return 1
  fi
  [[ -z $stamp ]] && wandb_resume::_unfinished_save "$dir" && return 1
  wandb_resume::_check_weights "$dir"
}

# Why a weights-only checkpoint is passed over (unless --allow-weights-only; read
# here under a save record, and by weights.bash).
_WANDB_RESUME_WEIGHTS_ONLY='weights only (saved with save_only_model: no optimizer.pt, scheduler.pt or rng_state.pth): the trainer would go on with a fresh optimizer and scheduler, a different run; --allow-weights-only resumes from it anyway'

# Is PATH gone (deleted while we looked at it)? Arguments: PATH
wandb_resume::_vanished() {
  [[ ! -e $1 && ! -L $1 ]]
}

# Other layouts, named as what they are (never "probably interrupted"): a folder that
# Accelerate's save_state wrote holds random_states_<process>.pkl (or a registered
# object's custom_checkpoint_<i>.pkl), which no Trainer save has; a Trainer checkpoint
# holds trainer_state.json. train-resume does not resume such a folder: a custom loop
# resumes it itself (docs/python.md: "Custom training loops").
_WANDB_RESUME_ACCELERATE="train-resume resumes HF Trainer checkpoints; a custom loop resumes such folders itself with accelerator.load_state(...), see \"Custom training loops\" in docs/python.md"

# Is DIR a folder of Accelerate's save_state? Arguments: DIR
# Sets: c_reason (naming the layout and what it holds). Returns: 0 yes, 1 no.
wandb_resume::_accelerate_folder() {
  local n='+([0-9])' f seen='' # an extglob from a variable (the caller may not have it on)
  # shellcheck disable=SC2206 # the patterns are meant to expand (nullglob: only matches)
  local -a marks=("$1"/random_states_$n.pkl "$1"/custom_checkpoint_$n.pkl)
  ((${#marks[@]} > 0)) || return 1
  for f in "$1"/*; do
    seen+="${seen:+, }${f##*/}"
  done
  c_reason="an Accelerate save_state folder ($seen; no trainer_state.json), not a Trainer checkpoint: $_WANDB_RESUME_ACCELERATE (under train-resume: --checkpoint none, the loop resuming itself)"
}

# Accelerate's own layout (ProjectConfiguration(automatic_checkpoint_naming=True)):
# OUT/checkpoints/checkpoint_<i>. Warned about on a new run, so that the log does not
# read as if the dir held nothing. Arguments: OUTPUT_DIR
wandb_resume::_warn_accelerate_layout() {
  local n='+([0-9])'
  [[ -d $1/checkpoints ]] || return 0
  # shellcheck disable=SC2206 # the pattern is meant to expand (nullglob: only matches)
  local -a found=("$1"/checkpoints/checkpoint_$n)
  ((${#found[@]} > 0)) || return 0
  wandb_resume::_warn "$1/checkpoints holds ${#found[@]} Accelerate save_state folder(s) (${found[0]##*/} ... ${found[-1]##*/}), not Trainer checkpoint-N folders: $_WANDB_RESUME_ACCELERATE"
}

# Find the newest complete checkpoint-N in an output dir. The file system may change
# while it looks (save_total_limit rotating a checkpoint away while a previous job
# still saves, an --explain from a monitoring script): a checkpoint that vanishes
# while it is checked (the folder, or a file in it) is passed over, and the folder is
# listed again (a newer checkpoint may have appeared meanwhile), as it is when none
# was complete but the listing changed; checkpoints judged before are not checked
# again.
# Arguments: OUTPUT_DIR
# Sets: l_path ("" when none), l_count (how many checkpoint-* names were seen),
#   l_numbered (how many checkpoint-<digits>), the st_* of the chosen one; appends
#   to skipped.
# Returns: 0 (also when none), 1 when the dir cannot be read, the checkpoint it
#   would take cannot be read (permissions), or a tool of ours failed (error says
#   which).
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: rec_oldest
wandb_resume::_latest() {
  local out=${1%/} f name c_reason rc listing=0 rec_oldest=''
  local GLOBSORT=name # bash 5.3: sort globs by name, as bash 5.2 always does
  # The step numbers already judged (skipped or vanished), for a listing again.
  local -A judged=()
  l_path='' l_count=0 l_numbered=0
  [[ -z $out ]] && out=/
  if [[ -e $out && ! -d $out ]]; then
    error="output dir $out is not a directory"
    return 1
  fi
  [[ -d $out ]] || return 0
  if [[ ! -r $out || ! -x $out ]]; then
    error="cannot read output dir $out: $(wandb_resume::_permission_reason "$out")"
    return 1
  fi
  # The globs do the sorting out (no loop over what may be 10,000 names):
  # checkpoint-<number> without a leading zero, and the rest.
  # (extglob patterns from variables: the caller may have sourced us without extglob)
  local number='@(0|[1-9]*([0-9]))' other='!(0|[1-9]*([0-9]))'
  local -a good=() bad=()
  while :; do
    # shellcheck disable=SC2206 # the patterns are meant to expand
    good=("$out"/checkpoint-$number) bad=("$out"/checkpoint-$other)
    l_count=$((${#good[@]} + ${#bad[@]}))
    l_numbered=${#good[@]}
    for f in "${bad[@]}"; do
      if [[ ${f##*/checkpoint-} == +([0-9]) ]]; then
        ((l_numbered += 1))
        ((listing)) || wandb_resume::_skip "$f" 'step number with a leading zero (HF never writes one)'
      else
        ((listing)) || wandb_resume::_skip "$f" 'not named checkpoint-<number>'
      fi
    done
    ((${#good[@]} > 0)) || return 0
    if ! command -v jq >/dev/null 2>&1; then
      error="jq not found on PATH: it is needed to check the trainer_state.json of the ${#good[@]} checkpoint(s) in $out, so no safe decision can be made (without jq only the checkpoint-wandb, wandb-dir and env run id sources work): $_WANDB_RESUME_JQ_INSTALL"
      return 1
    fi
    wandb_resume::_latest_in_listing
    case $? in
      0)
        [[ -n $l_path ]] && return 0
        # None complete. Unless the folder changed meanwhile (one of them was being
        # deleted while it was checked, a newer one appeared): done.
        # shellcheck disable=SC2206 # the pattern is meant to expand
        local -a now=("$out"/checkpoint-$number)
        [[ ${now[*]} != "${good[*]}" ]] || return 0
        ;;
      1) return 1 ;;
    esac
    # One vanished, or the folder changed: list it again.
    listing=$((listing + 1))
  done
}

# One pass of _latest over the listing in `good`, newest first.
# Returns: 0 done (l_path set, or "" when none is complete), 1 error, 2 a
#   checkpoint vanished while it was checked (passed over: list the folder again).
wandb_resume::_latest_in_listing() {
  local len max=0 i rc newest pat more='*([0-9])'
  local -a longer=()
  # The newest first, without a loop over every name (bash takes ~2 µs a name:
  # ~40 ms for 10,000): the glob sorts by name, and numbers without leading zeros
  # sort by name as by value when they have the same length, so the last name is
  # the newest of its length; a glob for longer names finds any newer one (again
  # from the last of those). (extglob pattern from a variable, as in _latest)
  newest=${good[-1]}
  while name=${newest##*/checkpoint-} && ((${#name} <= 18)); do
    printf -v pat '%*s' "${#name}" ''
    # shellcheck disable=SC2206 # the pattern is meant to expand
    longer=("$out"/checkpoint-[1-9]${pat// /[0-9]}$more)
    ((${#longer[@]})) || break
    newest=${longer[-1]}
  done
  wandb_resume::_latest_try "$newest"
  rc=$?
  ((rc == 3)) || return "$rc"
  # It was not complete: the others, newest first without sorting. Take the longest
  # names first, each length from the end of the list.
  for name in "${good[@]##*/checkpoint-}"; do
    ((${#name} > max)) && max=${#name}
  done
  for ((len = max; len > 0; len--)); do
    for ((i = ${#good[@]} - 1; i >= 0; i--)); do
      f=${good[i]}
      name=${f##*/checkpoint-}
      ((${#name} == len)) || continue
      [[ -n ${judged[$name]+1} ]] && continue
      wandb_resume::_latest_try "$f"
      rc=$?
      ((rc == 3)) || return "$rc"
    done
  done
  return 0
}

# Judge one checkpoint F of _latest_in_listing (unless judged before).
# Returns: 0 complete (l_path set), 1 error, 2 vanished (list again), 3 passed over
#   (or judged before).
wandb_resume::_latest_try() {
  local f=$1 name c_reason rc
  name=${f##*/checkpoint-}
  [[ -n ${judged[$name]+1} ]] && return 3
  judged[$name]=1
  if ((${#name} > 18)); then
    wandb_resume::_skip "$f" 'step number too large for a global_step'
    return 3
  fi
  wandb_resume::_check_checkpoint "$f"
  rc=$?
  # Complete, unless it is gone by now; anything else, when the folder is gone,
  # was a vanish (a file missing, a tool that found nothing to read ...).
  if ((rc == 0)) && [[ -d $f ]]; then
    l_path=$f
    return 0
  elif ((rc == 0 || rc == 4)) || wandb_resume::_vanished "$f"; then
    wandb_resume::_vanished "$f" &&
      c_reason='vanished while it was checked (deleted meanwhile: rotated away by save_total_limit?)'
    wandb_resume::_skip "$f" "$c_reason; looking at $out again"
    return 2
  fi
  case $rc in
    1) wandb_resume::_skip "$f" "$c_reason" ;;
    3)
      error="cannot read $f, the checkpoint the decision would take: $c_reason. Not passed over for an older one: the trainer, running as the same user, could not load it either, nor save beside it (to resume an older one on purpose: --checkpoint PATH)"
      return 1
      ;;
    *) return 1 ;;
  esac
  return 3
}

# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: l_count, quiet, warnings, st_where, st_type, st_value, st_wstep
wandb_resume::_latest_checkpoint_cmd() {
  local l_path='' l_count=0 l_numbered=0 error='' quiet=0 st_status='' st_reason='' st_step='' st_max='' out=''
  local -a skipped=() warnings=() st_where st_type st_value st_wstep
  (($# == 1)) || {
    printf 'usage: wandb_resume::latest_checkpoint OUTPUT_DIR\n' >&2
    return 2
  }
  if ! wandb_resume::_latest "$1"; then
    wandb_resume::_log error error "$error"
    return 1
  fi
  [[ -z $l_path ]] || printf '%s\n' "$l_path"
}

# Make a path absolute without resolving symlinks. Arguments: PATH. Sets: abs
wandb_resume::_absolute() {
  abs=$1
  [[ $abs == /* ]] || abs=$PWD/$abs
  while [[ $abs == *//* ]]; do abs=${abs//\/\//\/}; done
  while [[ $abs == */./* ]]; do abs=${abs//\/.\//\/}; done
  [[ $abs == */. ]] && abs=${abs%.}
  [[ $abs == ?*/ ]] && abs=${abs%/}
  return 0
}

# Warn when the free space under the output dir is below the size of a checkpoint.
# df's answer is read from the descriptor DF_FD, where the caller started
# `df -Pk -- OUTPUT_DIR` (_decide: it runs while the run id is looked for); closed here.
# Arguments: OUTPUT_DIR CHECKPOINT KIB (its size as its save record holds it, or "")
#   DF_FD
wandb_resume::_check_space() {
  local free used df_out='' fd=$4
  IFS= read -r -d '' df_out <&"$fd"
  exec {fd}<&-
  [[ -d $1 ]] || return 0
  if [[ $3 =~ ^[0-9]+$ ]]; then
    used=$3
  else
    used=$(exec du -sk -- "$2" 2>/dev/null) || return 0
    used=${used%%[[:space:]]*}
  fi
  df_out=${df_out%$'\n'}
  read -r _ _ _ free _ <<<"${df_out##*$'\n'}"
  [[ $free =~ ^[0-9]+$ && $used =~ ^[0-9]+$ ]] || return 0
  if ((free < used)); then
    wandb_resume::_warn "only $((free / 1024)) MiB free on the file system of $1, less than the checkpoint ($((used / 1024)) MiB): the next save may fail"
  fi
}
