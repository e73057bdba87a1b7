# shellcheck shell=bash
#
# record.bash: writing the save records (wandb_resume::record_save, which the trainer
# callback runs after every save): the checkpoint checked as the decision checks it,
# then OUTPUT_DIR/.train-resume/saved/checkpoint-N written whole. The format, and
# the reader the decision uses, are in saved.bash. Sourced when first used (a
# decision reads records, and never writes one).
# Part of lib/wandb_resume.sh.

# Write the save record of each CHECKPOINT (wandb_resume::record_save).
# Returns: 0 every record written, 1 one could not be written or a checkpoint could
#   not be checked (said on stderr), 2 usage error.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: quiet, skipped, warnings
wandb_resume::_record_save_cmd() {
  local ck rc=0 quiet=0
  local -a skipped=() warnings=()
  if (($# == 0)); then
    printf 'usage: wandb_resume::record_save CHECKPOINT...\n' >&2
    return 2
  fi
  for ck; do
    wandb_resume::_record_one "$ck" || rc=1
  done
  return "$rc"
}

# Check one checkpoint DIR as the decision does (weights-only allowed: the record
# says which it is), and write its record. Nothing when DIR holds no
# trainer_state.json (nothing was saved there). The state's identity is taken
# before the check and vouched for (the caller just saved it: json.dumps wrote it
# whole), as a format 1 record vouches for it at every restart; every entry's
# identity is taken before and after the check, and the check is recorded only when
# nothing changed meanwhile. Arguments: DIR. Returns: 0 written (complete or not), 1
# not written, or a tool of ours failed (said on stderr).
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: allow_weights_only, forget_failed
wandb_resume::_record_one() {
  local dir=${1%/} rec folder tmp before='' after='' line kb='' state_id='' i rc=0 checked='' clock=0
  local c_reason='' error='' st_status='' st_reason='' st_step='' st_max='' w_only=0
  local allow_weights_only=1 forget_failed=0 text='' GLOBSORT=name
  local -a st_where=() st_type=() st_value=() st_wstep=() st_project=() st_entity=() entries=() ids=()
  [[ -n $dir ]] || dir=/
  [[ -f $dir/trainer_state.json ]] || return 0
  wandb_resume::_record_path "$_WANDB_RESUME_SAVED_DIR" "$dir" rec
  folder=${rec%/*} tmp=${rec%/*}/.${rec##*/}.$BASHPID
  if ! mkdir -p -- "$folder" 2>/dev/null || ! : 2>/dev/null >"$tmp"; then
    wandb_resume::_log error error "cannot write the save record $rec: $(wandb_resume::_permission_reason "$folder")"
    return 1
  fi
  entries=("$dir"/*)
  wandb_resume::_record_before || clock=$?
  ((clock == 1)) && before=''
  i=0
  while IFS= read -r line; do
    ((i > 0)) && [[ ${entries[i - 1]} == "$dir/trainer_state.json" ]] && state_id=$line
    i=$((i + 1))
  done <<<"$before"
  wandb_resume::_record_check
  checked=${checked//[[:cntrl:]]/ }
  wandb_resume::_record_text
  if ! printf '%s' "$text" 2>/dev/null >"$tmp" || ! mv -f -- "$tmp" "$rec" 2>/dev/null; then
    rm -f -- "$tmp" 2>/dev/null
    wandb_resume::_log error error "cannot write the save record $rec: $(wandb_resume::_permission_reason "$folder")"
    return 1
  fi
  case $checked in
    complete) ;;
    incomplete*)
      wandb_resume::_warn "$dir, just saved, is not complete for a resume: $c_reason (a restart passes it over)"
      ;;
    *)
      wandb_resume::_warn "$dir: its save record vouches only for trainer_state.json (${checked#unsure: }): a restart checks the rest again"
      ((rc == 2)) && return 1
      ;;
  esac
  return 0
}

# Judge the checkpoint for its record (_record_one's step): unsure when its state
# could not be looked at or the clock did not pass its last write, else its files as
# the decision checks them, unchanged meanwhile. Reads (_record_one's): dir,
# state_id, clock, entries, before. Sets: checked, rc, after, kb, ids, the st_*,
# c_reason, error, w_only.
wandb_resume::_record_check() {
  local name i
  if [[ ! $state_id =~ ^$_WANDB_RESUME_STAT_RE$ ]]; then
    checked="unsure: trainer_state.json could not be looked at"
  elif ((clock)); then
    checked="unsure: the file system's clock did not pass the save's last write"
  else
    wandb_resume::_check_files "$dir" "$state_id"
    rc=$?
    after=$(exec stat -L -c "$_WANDB_RESUME_STAT_FMT" -- "$dir" "${entries[@]}" 2>/dev/null) || after=''
    if ((rc == 2)); then
      checked="unsure: $error"
    elif ((rc != 0)); then
      checked="incomplete: $c_reason"
    elif [[ $before != "$after" ]]; then
      checked='unsure: it changed while it was checked'
    else
      checked=complete
      for name in "${entries[@]##*/}"; do
        [[ $name == *[[:cntrl:]]* ]] && checked='unsure: a file name with control characters'
      done
      for ((i = 0; i < ${#st_where[@]}; i++)); do
        ids+=("${st_where[i]}"$'\t'"${st_type[i]}"$'\t'"${st_value[i]}"$'\t'"${st_wstep[i]}"$'\t'"${st_project[i]:-}"$'\t'"${st_entity[i]:-}")
        [[ ${ids[i]//$'\t'/} == *[[:cntrl:]]* ]] && checked='unsure: a run id with control characters'
      done
      [[ $st_step$st_max == *[[:cntrl:]]* ]] && checked='unsure: control characters'
      kb=$(exec du -sk -- "$dir" 2>/dev/null) && kb=${kb%%[[:space:]]*}
      [[ $kb =~ ^[0-9]+$ ]] || checked='unsure: du failed'
    fi
  fi
}

# The record's text (_record_one's step): header, state, checked; for a complete one
# its global_step, max_steps, weights, size, run ids, and every entry's identity.
# Reads (_record_one's): checked, state_id, kb, ids, after, entries, the st_*,
# w_only. Sets: text.
wandb_resume::_record_text() {
  local line i
  text="$_WANDB_RESUME_RECORD_HEADER"$'\n'"state $state_id"$'\n'"checked $checked"$'\n'
  if [[ $checked == complete ]]; then
    text+="global_step $st_step"$'\n'"max_steps $st_max"$'\n'
    ((w_only)) && text+=$'weights only\n' || text+=$'weights full\n'
    text+="kb $kb"$'\n'
    for line in "${ids[@]}"; do
      text+="id $line"$'\n'
    done
    i=0
    while IFS= read -r line; do
      if ((i == 0)); then
        text+="dir $line"$'\n'
      else
        text+="entry $line ${entries[i - 1]##*/}"$'\n'
      fi
      i=$((i + 1))
    done <<<"$after"
  fi
  text+=$'end\n'
}

# The identities of DIR and its entries before _record_one checks them, taken once
# the file system's clock has moved past every ctime among them: a file written in
# the same tick as the save's last write (the coarse clock of file times is a few ms)
# could keep its identity, but one written after this stat gets a later ctime. The
# tick is read from the ctime of TMP, just written, stat'ed first in the same stat
# (a few tries, 5 ms apart; the check itself takes longer than a tick, so the first
# try nearly always does). Reads (_record_one's): tmp, dir, entries.
# Sets: before (without TMP's line). Returns: 0, 1 stat failed, 2 no try saw the
#   clock pass (a ctime in the future: the clock set back).
wandb_resume::_record_before() {
  local try out probe line t
  for ((try = 1; try <= 8; try++)); do
    : 2>/dev/null >"$tmp" || return 1
    out=$(exec stat -L -c "$_WANDB_RESUME_STAT_FMT" -- "$tmp" "$dir" "${entries[@]}" 2>/dev/null) || return 1
    probe=${out%%$'\n'*} before=${out#*$'\n'}
    probe=${probe##* } probe=${probe/./}
    t=ok
    while IFS= read -r line; do
      line=${line##* } line=${line/./}
      ((10#$line < 10#$probe)) || t=''
    done <<<"$before"
    [[ -n $t ]] && return 0
    sleep 0.005 2>/dev/null
  done
  return 2
}
