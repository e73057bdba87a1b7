# shellcheck shell=bash
#
# saved.bash: the save records, OUTPUT_DIR/.train-resume/saved/checkpoint-N. The
# trainer callback (train_resume/callback.py) has wandb_resume::record_save write one
# after every save, once every rank has finished it (record.bash writes it): it is
# the save's commit marker (a newer checkpoint without one did not finish:
# _unfinished_save), and it holds what the decision would otherwise work out at every
# restart, checked by the decision's own code when it is written. While the files
# still match it, the decision reads nothing else (_record_holds).
# Part of lib/wandb_resume.sh.
#
# The record, format 2 (written whole: a temporary file, then a rename):
#   train-resume-save-record 2
#   state SIZE INODE MTIME CTIME        trainer_state.json as saved (stat -L -c '%s %i %.9Y %.9Z')
#   checked complete                    or `checked incomplete: REASON`, `checked unsure: WHY`
# and only after `checked complete`:
#   global_step N
#   max_steps M                         (empty when not a whole number)
#   weights full                        or `weights only` (no optimizer, scheduler or RNG state)
#   kb K                                du -sk of the checkpoint (the free-space warning)
#   id WHERE<TAB>TYPE<TAB>VALUE<TAB>WANDB_STEP<TAB>PROJECT<TAB>ENTITY   (each run id found)
#   dir SIZE INODE MTIME CTIME          the checkpoint folder (an entry added, removed or
#                                       renamed changes its mtime and ctime)
#   entry SIZE INODE MTIME CTIME NAME   every entry of the folder (its top level; the
#                                       check reads nothing elsewhere): a write changes
#                                       size, mtime or ctime (ctime even with mtime set
#                                       back), a file replaced has another inode
# and last:
#   end
# Format 1 (train_resume before issue 21) is the `state` line's four fields alone: the
# state's identity, read as before (the ends of a large state), nothing else vouched.
# Anything else in saved/ is still a commit marker (_unfinished_save), and vouches for
# nothing.
_WANDB_RESUME_RECORD_HEADER='train-resume-save-record 2'
_WANDB_RESUME_STAT_FMT='%s %i %.9Y %.9Z'
# One identity as stat prints it with _WANDB_RESUME_STAT_FMT (ERE).
_WANDB_RESUME_STAT_RE='[0-9]+ [0-9]+ [0-9]+\.[0-9]{9} [0-9]+\.[0-9]{9}'

# The record of KIND (a folder of shared.env: SAVED_DIR, the save records;
# FAILED_DIR, the failed-load records) of checkpoint DIR:
# <its parent>/.train-resume/KIND/<its name>. Arguments: KIND DIR OUT.
# Sets the variable named OUT.
wandb_resume::_record_path() {
  local dir=${2%/} parent=''
  [[ $dir == */* ]] && parent=${dir%/*}/
  printf -v "$3" '%s' "$parent$_WANDB_RESUME_STATE_DIR/$1/${dir##*/}"
}

# Does the save record of checkpoint DIR vouch for it (format 2, `checked complete`),
# and do all its files still match it? Its entries are the folder's (a glob); one
# stat over the folder and every entry and one grep for NUL bytes in
# trainer_state.json (which a crash can leave in blocks never written even under a
# record that reached the disk) run while the record is read. Nothing else is read,
# and nothing read is evaluated. Arguments: DIR
# Sets (on 0): the st_* of the state as recorded (st_status=ok), w_only, st_kb.
# Returns: 0 it holds, 1 it does not (no record, another format, a mismatch, NUL
#   bytes, a tool that failed: the caller checks the files as without a record).
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: st_status, st_reason, st_kb
wandb_resume::_record_holds() {
  local dir=${1%/} rec text='' expect='' got=0 grep_out='' error=''
  local step='' max='' weights='' kb='' state=0 size='' nul_fd='' nul='' holds=0 stat_fd='' now=''
  local -a lines=() args=() here=() r_where=() r_type=() r_value=() r_wstep=() r_project=() r_entity=()
  local - IFS=$'\n' GLOBSORT=name # (the record's lines are split, never globbed: set -f)
  wandb_resume::_record_path "$_WANDB_RESUME_SAVED_DIR" "$dir" rec
  [[ -f $rec ]] || return 1
  IFS= read -r -d '' -N 65536 text 2>/dev/null <"$rec"
  [[ $text == "$_WANDB_RESUME_RECORD_HEADER"$'\nstate '*$'\nchecked complete\n'*$'\nend\n' ]] || return 1
  size=${text#*$'\nstate '} size=${size%% *}
  [[ $size =~ ^[0-9]{1,18}$ ]] || return 1
  # The NUL grep and the stat of the folder and its entries run while the record is
  # read; their answers are waited for either way (no process of ours outlives the
  # decision).
  exec {nul_fd}< <(
    wandb_resume::_grep_nul "$dir/trainer_state.json" "$size"
    printf '%s' "$?"
  )
  here=("$dir"/*)
  exec {stat_fd}< <(exec stat -L -c "$_WANDB_RESUME_STAT_FMT" -- "$dir" "${here[@]}" 2>/dev/null)
  wandb_resume::_record_vouches && holds=1
  IFS= read -r -d '' now <&"$stat_fd"
  exec {stat_fd}<&-
  IFS= read -r -d '' nul <&"$nul_fd"
  exec {nul_fd}<&-
  [[ $holds == 1 && ${now%$'\n'} == "$expect" && $nul == 1 ]] || return 1
  st_status=ok st_reason='' st_step=$step st_max=$max
  st_where=("${r_where[@]}") st_type=("${r_type[@]}") st_value=("${r_value[@]}")
  st_wstep=("${r_wstep[@]}") st_project=("${r_project[@]}") st_entity=("${r_entity[@]}")
  w_only=0
  [[ $weights == only ]] && w_only=1
  st_kb=$kb
  return 0
}

# Does the record's text vouch for DIR, and are its entries the record's (_record_holds'
# step)? Reads: text, dir. Sets (_record_holds' locals): lines, args, the fields
# (_record_fields). Returns: 0 it does (but for the identities: _record_holds'), 1 not.
wandb_resume::_record_vouches() {
  set -f
  # shellcheck disable=SC2206 # split on newlines (IFS), with globbing off
  lines=($text)
  set +f
  args=("$dir")
  wandb_resume::_record_fields || return 1
  # The state is one of the entries; the folder's step is the record's.
  [[ $got == 1 && $state == 1 && $step =~ ^[0-9]{1,18}$ && (-z $max || $max =~ ^[0-9]{1,18}$) &&
    $weights == @(full|only) && $kb =~ ^[0-9]+$ ]] || return 1
  [[ ${dir##*/} != checkpoint-+([0-9]) || ${dir##*/checkpoint-} == "$step" ]] || return 1
  [[ $size =~ ^[0-9]{1,18}$ ]] || return 1
  wandb_resume::_record_matches
}

# The fields of a save record (_record_holds' step), each of its form, or 1. Reads:
# lines, dir. Sets (_record_holds' locals): step, max, weights, kb, size, state,
# got, expect (the identities recorded), args (DIR and its entries), r_*.
wandb_resume::_record_fields() {
  local line key value where type id wstep project entity
  for line in "${lines[@]:1}"; do
    key=${line%% *} value=${line#* }
    [[ $line == *' '* ]] || value=''
    case $key in
      checked | end) ;;
      state)
        [[ $value =~ ^$_WANDB_RESUME_STAT_RE$ ]] || return 1
        size=${value%% *}
        ;;
      global_step) step=$value ;;
      max_steps) max=$value ;;
      weights) weights=$value ;;
      kb) kb=$value ;;
      id)
        # WHERE TYPE VALUE WANDB_STEP PROJECT ENTITY, TAB-separated (five tabs)
        id=${value//[!$'\t']/}
        ((${#id} == 5)) || return 1
        where=${value%%$'\t'*} value=${value#*$'\t'}
        type=${value%%$'\t'*} value=${value#*$'\t'}
        id=${value%%$'\t'*} value=${value#*$'\t'}
        wstep=${value%%$'\t'*} value=${value#*$'\t'}
        project=${value%%$'\t'*} entity=${value#*$'\t'}
        [[ -z $wstep || $wstep =~ ^[0-9]{1,18}$ ]] || return 1
        r_where+=("$where") r_type+=("$type") r_value+=("$id") r_wstep+=("$wstep")
        r_project+=("$project") r_entity+=("$entity")
        ;;
      dir)
        [[ $value =~ ^$_WANDB_RESUME_STAT_RE$ && $got == 0 ]] || return 1
        expect=$value got=1
        ;;
      entry)
        [[ $value =~ ^($_WANDB_RESUME_STAT_RE)\ ([^/]+)$ && $got == 1 ]] || return 1
        [[ ${BASH_REMATCH[2]} != @(.|..) ]] || return 1
        expect+=$'\n'${BASH_REMATCH[1]}
        args+=("$dir/${BASH_REMATCH[2]}")
        [[ ${BASH_REMATCH[2]} == trainer_state.json ]] && state=1
        ;;
      *) return 1 ;;
    esac
  done
  return 0
}

# Are the folder's entries (here: its glob) the record's, and only those, as
# _record_one lists them (_record_holds' step; the identities recorded, expect, are
# compared with stat's there)? Reads: here, args. Returns: 0 they are, 1 not.
wandb_resume::_record_matches() {
  local key
  ((${#here[@]} == ${#args[@]} - 1)) || return 1
  for key in "${!here[@]}"; do
    [[ ${here[key]} == "${args[key + 1]}" ]] || return 1
  done
}

# The identity of trainer_state.json in the save record of checkpoint DIR, format 2
# (its `state` line) or 1 (its only line). Arguments: DIR. Sets: stamp ("" when none).
wandb_resume::_record_state() {
  local rec line
  stamp=''
  wandb_resume::_record_path "$_WANDB_RESUME_SAVED_DIR" "$1" rec
  [[ -f $rec && -r $rec ]] || return 0
  IFS= read -r -d '' -N 256 line 2>/dev/null <"$rec"
  if [[ $line == "$_WANDB_RESUME_RECORD_HEADER"$'\nstate '* ]]; then
    line=${line#*$'\nstate '}
  fi
  line=${line%%$'\n'*}
  [[ $line =~ ^$_WANDB_RESUME_STAT_RE$ ]] && stamp=$line
  return 0
}

# Is FILE (CHECKPOINT/trainer_state.json) still exactly as the trainer saved it? True
# when its identity (size, inode, mtime, ctime, as stat -c '%s %i %.9Y %.9Z' prints
# them) is STAMP, else the one the checkpoint's save record holds (written right after
# the save: _record_one). Arguments: FILE [STAMP]
wandb_resume::_as_saved() {
  local file=$1 stamp=${2:-} now
  [[ $file == */* ]] || return 1
  [[ -n $stamp ]] || wandb_resume::_record_state "${file%/*}"
  [[ -n $stamp ]] || return 1
  now=$(exec stat -L -c "$_WANDB_RESUME_STAT_FMT" -- "$file" 2>/dev/null) || return 1
  [[ $now == "$stamp" ]]
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
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: c_reason
wandb_resume::_unfinished_save() {
  local dir=${1%/} name parent f n number='@([1-9])*([0-9])'
  [[ -n ${rec_oldest+set} ]] || local rec_oldest=''
  name=${dir##*/} parent=.
  [[ $dir == */* ]] && parent=${dir%/*}
  [[ $name =~ ^checkpoint-([1-9][0-9]{0,17})$ ]] || return 1
  n=${BASH_REMATCH[1]}
  [[ -e $parent/$_WANDB_RESUME_STATE_DIR/$_WANDB_RESUME_SAVED_DIR/$name ]] && return 1
  if [[ -z $rec_oldest ]]; then
    rec_oldest=none
    # (an extglob pattern from a variable: the caller may have sourced us without extglob)
    for f in "$parent/$_WANDB_RESUME_STATE_DIR/$_WANDB_RESUME_SAVED_DIR"/checkpoint-$number; do
      f=${f##*/checkpoint-}
      ((${#f} <= 18)) && [[ $rec_oldest == none || $f -lt $rec_oldest ]] && rec_oldest=$f
    done
  fi
  [[ $rec_oldest != none ]] && ((n > rec_oldest)) || return 1
  c_reason="its save did not finish on every rank: no save record, though the saves from checkpoint-$rec_oldest on are recorded ($_WANDB_RESUME_STATE_DIR/$_WANDB_RESUME_SAVED_DIR/; the callback records a save once every rank has finished it): killed after rank 0 wrote trainer_state.json, before another rank (or the trainer's own extras, such as TRL's entropy_ctrl_state.json) had finished"
}
