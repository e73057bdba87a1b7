# shellcheck shell=bash
#
# run_id.bash: W&B run ids: W&B's rules for an id, and the id found in the run
# folders of a `wandb` dir (run-<time>-<id>/run-<id>.wandb).
# Part of lib/wandb_resume.sh.

# The default order of the run id sources (WANDB_RESUME_SOURCES overrides it): the
# checkpoint's own record first (its wandb folder, then the id its trainer_state.json
# stores), so that another run writing into OUTPUT_DIR/wandb (an evaluation started
# with WANDB_DIR=OUTPUT_DIR) never takes over.
_WANDB_RESUME_DEFAULT_SOURCES=checkpoint-wandb,trainer-state,wandb-dir,env

# Step 2: which W&B run id. Every source of source_list is consulted in order
# (so that disagreements can be warned about); the first id found wins:
#   checkpoint-wandb  run folders in CHECKPOINT/wandb
#   trainer-state  the id the callback stored in the checkpoint's trainer_state.json
#   wandb-dir      run folders in OUTPUT_DIR/wandb, --wandb-dir (DIR/wandb, or DIR
#                  itself when named wandb), $WANDB_DIR/wandb; also CHECKPOINT/wandb
#                  first when checkpoint-wandb is not in the list (older lists)
#   env            an existing WANDB_RUN_ID
# Reads: source_list, ckpt, output_dir, wandb_dir, resume_mode and the st_* of the
#   checkpoint. Sets: run_id, run_id_source, wandb_resume; logs every step.
# shellcheck disable=SC2154 # shared through dynamic scope, which shellcheck does not follow; read here, a caller's: source_list, ckpt
wandb_resume::_find_run_id() {
  local src t_id='' t_where='' id_problem='' joined
  local -a cand_src=() cand_id=() cand_detail=() searched=() scanned=()
  for src in "${source_list[@]}"; do
    case $src in
      checkpoint-wandb | wandb-dir)
        wandb_resume::_run_id_from_wandb_dirs "$src"
        ;;
      trainer-state)
        searched+=("$ckpt/trainer_state.json")
        wandb_resume::_log info looking "$ckpt/trainer_state.json"
        if wandb_resume::_state_run_id "$ckpt/trainer_state.json"; then
          cand_src+=(trainer-state) cand_id+=("$t_id")
          cand_detail+=("$ckpt/trainer_state.json $t_where")
        fi
        ;;
      env)
        searched+=(WANDB_RUN_ID)
        wandb_resume::_log info looking WANDB_RUN_ID
        if [[ -n ${WANDB_RUN_ID+set} ]]; then
          wandb_resume::_id_problem "$WANDB_RUN_ID"
          if [[ -z $id_problem ]]; then
            cand_src+=(env) cand_id+=("$WANDB_RUN_ID") cand_detail+=(WANDB_RUN_ID)
          else
            wandb_resume::_skip "WANDB_RUN_ID" "$id_problem"
          fi
        fi
        ;;
    esac
  done
  if ((${#cand_id[@]} == 0)); then
    printf -v joined '%s, ' "${searched[@]}"
    wandb_resume::_reports_to_wandb && wandb_resume::_log warn notfound "${joined%, }"
    return 0
  fi
  wandb_resume::_run_id_chosen
}

# Step 2, a W&B source (checkpoint-wandb: the checkpoint's wandb folder; wandb-dir:
# the run folders beside it, the output dir's, --wandb-dir's, WANDB_DIR's): the
# first folder not scanned yet that holds a run id. Arguments: SOURCE. Reads: ckpt,
# output_dir, wandb_dir, source_list. Adds to: cand_*, searched, scanned.
# shellcheck disable=SC2154 # shared through dynamic scope, which shellcheck does not follow; read here, a caller's: output_dir
wandb_resume::_run_id_from_wandb_dirs() {
  local src=$1 dir abs i w_id='' w_folder=''
  local -a dirs=()
  if [[ $src == checkpoint-wandb ]]; then
    dirs=("$ckpt/wandb")
  else
    dirs=("$ckpt/wandb" "$output_dir/wandb")
    for abs in "${source_list[@]}"; do
      [[ $abs == checkpoint-wandb ]] && dirs=("$output_dir/wandb")
    done
    [[ -n $wandb_dir ]] && dirs+=("${wandb_dir%/}/wandb")
    [[ ${wandb_dir%/} == ?(*/)wandb ]] && dirs+=("${wandb_dir%/}")
    [[ -n ${WANDB_DIR:-} ]] && dirs+=("${WANDB_DIR%/}/wandb")
  fi
  for ((i = 0; i < ${#dirs[@]}; i++)); do
    dir=${dirs[i]}
    for abs in "${dirs[@]:0:i}" "${scanned[@]}"; do
      [[ $abs == "$dir" || $abs -ef $dir ]] && continue 2
    done
    searched+=("$dir") scanned+=("$dir")
    wandb_resume::_log info looking "$dir"
    if wandb_resume::_scan_wandb_dir "$dir"; then
      cand_src+=("$src") cand_id+=("$w_id") cand_detail+=("$w_folder")
      break
    fi
  done
}

# Step 2, the first candidate wins (the order of the sources); every other one is
# said to agree, or warned about. Reads: cand_*, resume_mode. Sets: run_id,
# run_id_source, wandb_resume; adds to warnings.
# shellcheck disable=SC2034,SC2154 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: wandb_resume; read here, a caller's: resume_mode
wandb_resume::_run_id_chosen() {
  local i
  run_id=${cand_id[0]} run_id_source=${cand_src[0]} wandb_resume=$resume_mode
  wandb_resume::_log info found "$run_id" "$run_id_source" "${cand_detail[0]}"
  for ((i = 1; i < ${#cand_id[@]}; i++)); do
    if [[ ${cand_id[i]} == "$run_id" ]]; then
      wandb_resume::_log info agrees "${cand_detail[i]}" "$run_id"
    else
      warnings+=("run ids disagree: $run_id ($run_id_source: ${cand_detail[0]}) and ${cand_id[i]} (${cand_src[i]}: ${cand_detail[i]}); following the order: $run_id")
      wandb_resume::_log warn disagree "$run_id" "$run_id_source" "${cand_detail[0]}" \
        "${cand_id[i]}" "${cand_src[i]}" "${cand_detail[i]}" "$run_id"
    fi
  done
}

# Whether the trainer may report to W&B, as far as can be known here: not with
# WANDB_MODE=disabled, nor when COMMAND's arguments hold a --report_to (or
# --report-to; the last one, as argparse takes it) naming neither wandb nor all.
# Without such an argument it is not known (transformers 5 defaults to none, but a
# script or a config file may say wandb): then it may. Reads: command.
# Returns: 0 it may report to W&B, 1 it does not.
# shellcheck disable=SC2154 # shared through dynamic scope, which shellcheck does not follow; read here, a caller's: command
wandb_resume::_reports_to_wandb() {
  local arg values='' given='' taking=''
  [[ ${WANDB_MODE:-} != disabled ]] || return 1
  for arg in "${command[@]:1}"; do
    if [[ -n $taking && $arg != -* ]]; then
      values+=,$arg
      continue
    fi
    taking=''
    case $arg in
      --report_to | --report-to) values='' given=1 taking=1 ;;
      --report_to=* | --report-to=*) values=,${arg#*=} given=1 ;;
    esac
  done
  values=${values,,},
  [[ -z $given || $values == *,@(wandb|all),* ]]
}

# Set `id_problem` (the caller's local) to why ID breaks W&B's rules, or to "".
# Arguments: ID
wandb_resume::_id_problem() {
  local id=$1
  id_problem=''
  if [[ -z $id ]]; then
    id_problem='empty run id'
  elif [[ $id == *[[:cntrl:]]* ]]; then
    id_problem='run id contains control characters'
  elif [[ $id =~ [:\;,#?/\'] ]]; then
    id_problem="run id contains one of the characters W&B forbids (:;,#?/')"
  elif [[ $id == [[:space:]]* || $id == *[[:space:]] ]]; then
    id_problem='run id has leading or trailing space'
  elif ((${#id} > 227)); then
    id_problem="run id is ${#id} bytes long (W&B allows at most 227)"
  fi
}

wandb_resume::_check_run_id_cmd() {
  local id_problem
  (($# == 1)) || {
    printf 'usage: wandb_resume::check_run_id ID\n' >&2
    return 2
  }
  wandb_resume::_id_problem "$1"
  [[ -z $id_problem ]] && return 0
  printf '%s\n' "$id_problem"
  return 1
}

# Take the run id from one W&B run folder, if it holds exactly one valid
# run-<id>.wandb file. Arguments: FOLDER. Sets: w_id, w_folder. Returns 0 when taken.
wandb_resume::_try_run_folder() {
  local f=$1 id id_problem rest
  local -a files=() matching=()
  if [[ ! -d $f ]]; then
    wandb_resume::_skip_folder "$f" 'not a directory'
    return 1
  fi
  if [[ ! -r $f || ! -x $f ]]; then
    wandb_resume::_skip_folder "$f" "$(wandb_resume::_permission_reason "$f")"
    return 1
  fi
  files=("$f"/run-*.wandb)
  if ((${#files[@]} > 1)); then
    # W&B writes one; keep the one whose id the folder name carries.
    rest=${f##*/}
    rest=${rest#offline-}
    rest=${rest:20}
    for id in "${files[@]}"; do
      id=${id##*/run-}
      id=${id%.wandb}
      [[ $rest == "$id" || $rest == "$id"-[1-9]*([0-9]) ]] && matching+=("$f/run-$id.wandb")
    done
    if ((${#matching[@]} != 1)); then
      wandb_resume::_skip "$f" "${#files[@]} run-<id>.wandb files and none that the folder name singles out"
      return 1
    fi
    files=("${matching[@]}")
  fi
  if ((${#files[@]} == 0)) || [[ ! -f ${files[0]} ]]; then
    wandb_resume::_skip_folder "$f" 'no run-<id>.wandb file inside (the run never started writing?)'
    return 1
  fi
  id=${files[0]##*/run-}
  id=${id%.wandb}
  wandb_resume::_id_problem "$id"
  if [[ -n $id_problem ]]; then
    wandb_resume::_skip "${files[0]}" "$id_problem"
    return 1
  fi
  w_id=$id
  w_folder=$f
}

# Skip FOLDER for REASON; when it is gone by now (deleted while it was looked at:
# `wandb sync --clean`, a cleanup script), say so instead, since REASON then only
# says what its absence looked like. Arguments: FOLDER REASON
wandb_resume::_skip_folder() {
  if wandb_resume::_vanished "$1"; then
    wandb_resume::_skip "$1" 'vanished while it was looked at (deleted meanwhile); passed over'
  else
    wandb_resume::_skip "$1" "$2"
  fi
}

# Find the run id in one `wandb` folder of W&B run folders: the folder latest-run
# points to, else the newest by time, else the next newest ...
# Arguments: DIR
# Sets (caller's locals): w_id, w_folder; appends to skipped/warnings.
# Returns: 0 found, 1 not.
wandb_resume::_scan_wandb_dir() {
  local dir=$1 f n latest=''
  local t='[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]_[0-9][0-9][0-9][0-9][0-9][0-9]'
  local GLOBSORT=name # bash 5.3: sort globs by name, as bash 5.2 always does
  local -a online=() offline=()
  w_id='' w_folder=''
  [[ -d $dir ]] || return 1
  if [[ ! -r $dir || ! -x $dir ]]; then
    wandb_resume::_skip_folder "$dir" "$(wandb_resume::_permission_reason "$dir")"
    return 1
  fi
  # Each glob comes back sorted by name, so by time (YYYYMMDD_HHMMSS) and, within a
  # second, the plain folder before its -1, -2 ... copies: the newest is last.
  # shellcheck disable=SC2206 # $t is a glob pattern, meant to expand
  online=("$dir"/run-$t-?*) offline=("$dir"/offline-run-$t-?*)
  n=$((${#online[@]} + ${#offline[@]}))
  ((n > 0)) || return 1
  [[ -L $dir/latest-run ]] && wandb_resume::_latest_run_link
  if [[ -z $latest ]] || ! wandb_resume::_try_run_folder "$latest"; then
    wandb_resume::_newest_run_folder
  fi
  [[ -n $w_id ]] || return 1
  if ((n > 1)); then
    local -a others=()
    # The newest four of each list (a negative offset past the start gives nothing).
    local from_a=$((${#online[@]} > 4 ? ${#online[@]} - 4 : 0))
    local from_b=$((${#offline[@]} > 4 ? ${#offline[@]} - 4 : 0))
    for f in "${online[@]:from_a}" "${offline[@]:from_b}"; do
      [[ $f == "$w_folder" ]] || others+=("${f##*/}")
    done
    wandb_resume::_log info note "👀 also seen in $dir: $((n - 1)) other run folder(s), among them: ${others[*]}"
  fi
  return 0
}

# The run folder dir/latest-run points to (W&B's own link), when it is one of the run
# folders (online, offline); warned about when it leads nowhere or elsewhere.
# Reads: dir, online, offline. Sets: latest ('' when none).
wandb_resume::_latest_run_link() {
  local f
  if [[ ! -e $dir/latest-run ]]; then
    wandb_resume::_warn "$dir/latest-run leads nowhere (dangling); using the newest run folder instead"
  else
    # Usually one of the newest two: test those first, then all (only then: a list
    # of 10,000 words costs ~10 ms to build).
    for f in "${online[@]: -1}" "${offline[@]: -1}"; do
      if [[ $dir/latest-run -ef $f ]]; then
        latest=$f
        break
      fi
    done
    if [[ -z $latest ]]; then
      for f in "${online[@]}" "${offline[@]}"; do
        if [[ $dir/latest-run -ef $f ]]; then
          latest=$f
          break
        fi
      done
    fi
    [[ -n $latest ]] ||
      wandb_resume::_warn "$dir/latest-run points outside the run folders of $dir; using the newest run folder instead"
  fi
  return 0
}

# The newest run folder that holds a valid run id, from the ends of the two sorted
# lists (online, offline), latest (tried already) passed over. Reads: online,
# offline, latest. Sets (through _try_run_folder): w_id, w_folder.
wandb_resume::_newest_run_folder() {
  local f ta tb
  # Newest first: take from the ends of the two sorted lists.
  local a=$((${#online[@]} - 1)) b=$((${#offline[@]} - 1))
  while ((a >= 0 || b >= 0)); do
    ta='' tb=''
    ((a >= 0)) && ta=${online[a]##*/run-}
    ((b >= 0)) && tb=${offline[b]##*/offline-run-}
    if [[ ${ta:0:15} > ${tb:0:15} ]]; then
      f=${online[a]} && ((a -= 1))
    else
      f=${offline[b]} && ((b -= 1))
    fi
    [[ $f == "$latest" ]] && continue
    wandb_resume::_try_run_folder "$f" && break
  done
  return 0
}

wandb_resume::_run_id_from_wandb_dir_cmd() {
  local w_id w_folder quiet=0
  local -a skipped=() warnings=()
  (($# == 1)) || {
    printf 'usage: wandb_resume::run_id_from_wandb_dir DIR\n' >&2
    return 2
  }
  wandb_resume::_scan_wandb_dir "$1" || return 1
  printf '%s\n' "$w_id"
}

# The body of wandb_resume::run_id_from_trainer_state FILE: the run id stored in a
# trainer_state.json (read by state.bash).
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: st_step, st_max, quiet, error, out, st_wstep, skipped
wandb_resume::_run_id_from_trainer_state_cmd() {
  local st_status='' st_reason='' st_step='' st_max='' t_id='' t_where='' id_problem='' quiet=0 error='' out=''
  local -a st_where st_type st_value st_wstep skipped=() warnings=()
  (($# == 1)) || {
    printf 'usage: wandb_resume::run_id_from_trainer_state FILE\n' >&2
    return 2
  }
  wandb_resume::_read_state "$1"
  if [[ $st_status == fail ]]; then
    wandb_resume::_log error error "$st_reason"
    return 1
  elif [[ $st_status != ok ]]; then
    wandb_resume::_skip "$1" "$st_reason"
    return 1
  fi
  wandb_resume::_state_run_id "$1" || return 1
  printf '%s\n' "$t_id"
}

# Pick the first valid run id of the state read by _read_state.
# Arguments: FILE (for messages). Sets t_id, t_where. Returns 0 found, 1 not.
wandb_resume::_state_run_id() {
  local i
  t_id='' t_where=''
  for i in "${!st_where[@]}"; do
    if [[ ${st_type[i]} != string ]]; then
      wandb_resume::_skip "$1" "${st_where[i]} is a ${st_type[i]}, not a string: ${st_value[i]:0:80}"
      continue
    fi
    wandb_resume::_id_problem "${st_value[i]}"
    if [[ -n $id_problem ]]; then
      wandb_resume::_skip "$1" "${st_where[i]}: $id_problem"
      continue
    fi
    t_id=${st_value[i]}
    t_where=${st_where[i]}
    return 0
  done
  return 1
}
