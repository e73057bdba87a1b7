# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # a part: the decision's state is shared through the locals of its caller (decide.bash), which shellcheck cannot follow across files
#
# checkpoint.bash: what makes a checkpoint complete, and the newest complete
# checkpoint-N of an output dir.
# Part of lib/wandb_resume.sh.

# Step 1a: which output dir, and which checkpoint is asked for. The first of
# --checkpoint, RESUME_FROM_CHECKPOINT_DIR, resume_from_checkpoint in --config, and
# `latest` (the newest complete one); the output dir is --output-dir, else output_dir
# in --config, else the parent of a checkpoint named.
# Reads: checkpoint, config, output_dir. Sets: output_dir (absolute), want, how,
#   cfg_resume, cfg_output_dir; logs the output dir.
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
  fi
}

# Step 1: which checkpoint (as asked for: _choose_output_dir).
# Reads: want, how, output_dir, forget_failed. Sets: mode (resume|new), ckpt,
#   detail, the st_* of the chosen checkpoint; logs the choice.
# Returns: 0, 1 the decision failed (logged).
wandb_resume::_choose_checkpoint() {
  local abs l_path l_count l_numbered c_reason
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
      ;;
    latest)
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
      else
        mode=new
        wandb_resume::_detail d_not_yet "$output_dir"
      fi
      ;;
    *)
      wandb_resume::_absolute "$want"
      wandb_resume::_check_checkpoint "$abs"
      case $? in
        1)
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
      ;;
  esac
  if [[ $mode == new ]]; then
    wandb_resume::_log info new "$detail"
  else
    wandb_resume::_log info resume "$ckpt" "$detail"
    # A run that already reached max_steps (a requeue after the end, the same command
    # started again): said, not refused, since the command may ask for more steps.
    if [[ $st_step == +([0-9]) && $st_max == +([0-9]) && ${#st_step} -le 18 && ${#st_max} -le 18 ]] &&
      ((10#$st_max > 0 && 10#$st_step >= 10#$st_max)); then
      wandb_resume::_warn "${ckpt##*/} is at global_step $st_step of its max_steps $st_max: that run already finished; resuming it trains on only if the command asks for more steps"
    fi
  fi
}

# Check that DIR is a usable checkpoint; when its name is checkpoint-N, that its
# global_step is N. Arguments: DIR
# Sets: c_reason ("" when complete) and the st_* of its trainer_state.json;
#   error when one of our tools failed.
# Returns: 0 complete, 1 not (c_reason), 2 a tool of ours failed (error).
wandb_resume::_check_checkpoint() {
  local dir=$1 name
  c_reason=''
  if [[ -L $dir && ! -e $dir ]]; then
    c_reason='a symlink that leads nowhere (dangling, or a loop)'
  elif [[ ! -e $dir ]]; then
    c_reason='no such file or directory'
  elif [[ ! -d $dir ]]; then
    c_reason='not a directory'
  elif [[ ! -r $dir || ! -x $dir ]]; then
    c_reason=$(wandb_resume::_permission_reason "$dir")
  elif wandb_resume::_failed_record "$dir"; then
    :
  else
    wandb_resume::_read_state "$dir/trainer_state.json"
    if [[ $st_status == fail ]]; then
      return 2
    elif [[ $st_status != ok ]]; then
      c_reason=$st_reason
    else
      name=${dir%/}
      name=${name##*/}
      if [[ $name =~ ^checkpoint-([0-9]+)$ && ${BASH_REMATCH[1]} != "$st_step" ]]; then
        c_reason="global_step is $st_step, but the folder is $name (a copy, or a half-written save?)"
      elif wandb_resume::_unfinished_save "$dir"; then
        :
      else
        wandb_resume::_check_weights "$dir"
        case $? in
          1) ;;
          2) return 2 ;;
        esac
      fi
    fi
  fi
  [[ -z $c_reason ]]
}

# A save that did not finish on every rank. The callback records a save
# (OUTPUT_DIR/.train-resume/saved/checkpoint-N) once every rank has finished it; so in
# an output dir whose saves are recorded, a checkpoint-N newer than the oldest recorded
# one that has no record of its own was cut short after rank 0's trainer_state.json
# (another rank's files, or a subclass's extras such as TRL's entropy_ctrl_state.json,
# not written). Checkpoints older than the records, and dirs with no records, are
# judged by their files alone. The oldest record is looked for once per output dir
# (rec_oldest: none, or its step; a caller's local, else ours).
# Arguments: DIR (a checkpoint). Sets: c_reason when it did not finish.
# Returns: 0 it did not finish, 1 no sign of that.
wandb_resume::_unfinished_save() {
  local dir=${1%/} name parent f n number='@([1-9])*([0-9])'
  [[ -n ${rec_oldest+set} ]] || local rec_oldest=''
  name=${dir##*/} parent=.
  [[ $dir == */* ]] && parent=${dir%/*}
  [[ $name =~ ^checkpoint-([1-9][0-9]{0,17})$ ]] || return 1
  n=${BASH_REMATCH[1]}
  [[ -e $parent/.train-resume/saved/$name ]] && return 1
  if [[ -z $rec_oldest ]]; then
    rec_oldest=none
    # (an extglob pattern from a variable: the caller may have sourced us without extglob)
    for f in "$parent"/.train-resume/saved/checkpoint-$number; do
      f=${f##*/checkpoint-}
      ((${#f} <= 18)) && [[ $rec_oldest == none || $f -lt $rec_oldest ]] && rec_oldest=$f
    done
  fi
  [[ $rec_oldest != none ]] && ((n > rec_oldest)) || return 1
  c_reason="its save did not finish on every rank: no save record, though the saves from checkpoint-$rec_oldest on are recorded (.train-resume/saved/; the callback records a save once every rank has finished it): killed after rank 0 wrote trainer_state.json, before another rank (or the trainer's own extras, such as TRL's entropy_ctrl_state.json) had finished"
}

# Find the newest complete checkpoint-N in an output dir.
# Arguments: OUTPUT_DIR
# Sets: l_path ("" when none), l_count (how many checkpoint-* names were seen),
#   l_numbered (how many checkpoint-<digits>), the st_* of the chosen one; appends
#   to skipped.
# Returns: 0 (also when none), 1 when the dir cannot be read or a tool of ours
#   failed (error says which).
wandb_resume::_latest() {
  local out=${1%/} f name c_reason rec_oldest=''
  local GLOBSORT=name # bash 5.3: sort globs by name, as bash 5.2 always does
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
  # shellcheck disable=SC2206 # the patterns are meant to expand
  local -a good=("$out"/checkpoint-$number) bad=("$out"/checkpoint-$other)
  l_count=$((${#good[@]} + ${#bad[@]}))
  l_numbered=${#good[@]}
  for f in "${bad[@]}"; do
    if [[ ${f##*/checkpoint-} == +([0-9]) ]]; then
      ((l_numbered += 1))
      wandb_resume::_skip "$f" 'step number with a leading zero (HF never writes one)'
    else
      wandb_resume::_skip "$f" 'not named checkpoint-<number>'
    fi
  done
  ((${#good[@]} > 0)) || return 0
  if ! command -v jq >/dev/null 2>&1; then
    error="jq not found on PATH: it is needed to check the trainer_state.json of the ${#good[@]} checkpoint(s) in $out, so no safe decision can be made (without jq only the checkpoint-wandb, wandb-dir and env run id sources work). Install jq: apt-get install jq (or see make deps)"
    return 1
  fi
  # Newest first without sorting: the glob sorts by name, and numbers without
  # leading zeros sort by name as by value when they have the same length. So take
  # the longest names first, each length from the end of the list.
  local len max=0 i
  for name in "${good[@]##*/checkpoint-}"; do
    ((${#name} > max)) && max=${#name}
  done
  for ((len = max; len > 0; len--)); do
    for ((i = ${#good[@]} - 1; i >= 0; i--)); do
      f=${good[i]}
      name=${f##*/checkpoint-}
      ((${#name} == len)) || continue
      if ((len > 18)); then
        wandb_resume::_skip "$f" 'step number too large for a global_step'
      else
        wandb_resume::_check_checkpoint "$f"
        case $? in
          0)
            l_path=$f
            return 0
            ;;
          1) wandb_resume::_skip "$f" "$c_reason" ;;
          *) return 1 ;;
        esac
      fi
    done
  done
  return 0
}

wandb_resume::_latest_checkpoint_cmd() {
  local l_path l_count l_numbered error quiet=0 st_status st_reason st_step st_max out
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
# Arguments: OUTPUT_DIR CHECKPOINT
wandb_resume::_check_space() {
  local free used line
  [[ -d $1 ]] || return 0
  # One subshell for both: du's first field first, df's 4th field on its last line.
  line=$(du -sk -- "$2" 2>/dev/null && df -Pk -- "$1" 2>/dev/null) || return 0
  used=${line%%[[:space:]]*}
  read -r _ _ _ free _ <<<"${line##*$'\n'}"
  [[ $free =~ ^[0-9]+$ && $used =~ ^[0-9]+$ ]] || return 0
  if ((free < used)); then
    wandb_resume::_warn "only $((free / 1024)) MiB free on the file system of $1, less than the checkpoint ($((used / 1024)) MiB): the next save may fail"
  fi
}
