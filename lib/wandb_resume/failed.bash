# shellcheck shell=bash
#
# failed.bash: the failed-load records. When the trainer raises while loading the
# chosen checkpoint, the Python hook (train_resume/hook.py) writes
# OUTPUT_DIR/.train-resume/failed/<checkpoint name>, one line `Type: message`; the
# next decision passes that checkpoint over with the recorded reason.
# Part of lib/wandb_resume.sh.

# Is there a failed-load record of DIR (written by the Python hook when the trainer
# raised while loading it: <parent>/.train-resume/failed/<name>, one line
# `Type: message`) that still holds? A record older than DIR/trainer_state.json is
# of an earlier save of that step, and ignored; --forget-failed ignores them all.
# Arguments: DIR. Sets: c_reason when it holds. Returns 0 when it holds.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: c_reason
wandb_resume::_failed_record() {
  local dir=${1%/} rec line=''
  ((${forget_failed:-0})) && return 1
  wandb_resume::_record_path "$_WANDB_RESUME_FAILED_DIR" "$dir" rec
  [[ -f $rec ]] || return 1
  [[ -e $dir/trainer_state.json && $rec -ot $dir/trainer_state.json ]] && return 1
  if [[ -r $rec ]]; then
    IFS= read -r -N 1000 line <"$rec"
  else
    line='(unreadable record)'
  fi
  line=${line%%$'\n'*}
  line=${line//[[:cntrl:]]/?}
  c_reason="the trainer failed to load it: ${line:-(empty record)} (recorded in $rec; --forget-failed clears it)"
  return 0
}

# Remove the failed-load records under OUTPUT_DIR/.train-resume/failed (with
# --explain: say which would be removed, and only ignore them).
# Arguments: OUTPUT_DIR. Returns 0, 1 when one cannot be removed (error).
# shellcheck disable=SC2034,SC2154 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: error; read here, a caller's: explain
wandb_resume::_forget_failed() {
  local dir=${1%/}/$_WANDB_RESUME_STATE_DIR/$_WANDB_RESUME_FAILED_DIR f
  local -a recs=()
  [[ -d $dir ]] || return 0
  recs=("$dir"/*)
  [[ -e ${recs[0]} || -L ${recs[0]} ]] || return 0
  for f in "${recs[@]}"; do
    if ((explain)); then
      wandb_resume::_log info note "🧹 would forget the failed-load record $f (--explain: nothing removed; ignored in this decision)"
    elif rm -f -- "$f" 2>/dev/null && [[ ! -e $f ]]; then
      wandb_resume::_log info note "🧹 forgot the failed-load record $f"
    else
      error="--forget-failed: cannot remove $f: $(wandb_resume::_permission_reason "$dir")"
      return 1
    fi
  done
}
