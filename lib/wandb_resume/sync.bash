# shellcheck shell=bash
#
# sync.bash: `train-resume sync OUTPUT_DIR [--dry-run]`: upload the offline W&B run
# folders of OUTPUT_DIR/wandb with the real `wandb sync`, each run's segments in
# start-time order, past what a SIGKILL leaves. The facts of each run-<id>.wandb
# (run record, start time, whether it is cut) and the order of each run's segments
# come from train_resume.wandb_records (W&B's own protobufs; the order is also what
# the callback's replay check uses); the plan is decided here.
# Part of lib/wandb_resume.sh.

# Print the sync's usage. Outputs: the text on stdout.
wandb_resume::_sync_usage() {
  cat <<'USAGE'
Usage: train-resume sync OUTPUT_DIR [--dry-run]
       wandb_resume::sync OUTPUT_DIR [--dry-run]   (after: source lib/wandb_resume.sh)

Upload the offline W&B run folders (offline-run-*) of OUTPUT_DIR/wandb (or of
OUTPUT_DIR itself when it is named wandb) with `wandb sync`: one call per run id,
its folders in start-time order (the run record's start time, not the folder
name). A file holding only its 7-byte header (killed before W&B wrote its first
32 KiB block) is skipped: `wandb sync` would abort the whole call on it. A file
that ends inside a record is synced up to its last complete record, with a
warning naming the rows lost; `wandb sync` stops its call there ("file ends with
an incomplete record"), so the later folders of that run go in a next call. A folder with run-<id>.wandb.synced was
synced before and is left out. A failed call (other than that expected error)
stops the later calls of its run: a newer segment is never synced before an
older one.

Prints a table (run, folder, start time UTC, status, rows, global steps, action)
and each `wandb sync` command line, then runs them.

Options:
      --dry-run   print the plan and the command lines; run nothing
  -h, --help      show this help

Environment:
  TRAIN_RESUME_PYTHON   the Python that reads the .wandb files (needs wandb; default python3)
  TRAIN_RESUME_WANDB    the wandb command (default wandb)

Exit status: 0 synced (or planned), 1 a file could not be read or a call failed,
2 usage error.
USAGE
}

# The body of wandb_resume::sync. Arguments: OUTPUT_DIR [--dry-run]
wandb_resume::_sync_cmd() {
  local dir='' dry=0 help=0 wdir='' wb='' call=0 rc=0 prog=${_WANDB_RESUME_PROG:-train-resume}
  local -a files=() s_path=() s_id=() s_start=() s_status=() s_rows=() s_first=()
  local -a s_last=() s_lstep=() s_size=() s_end=() order=() c_folders=() c_run=()
  local -a c_cut=() s_action=()
  wandb_resume::_sync_options "$@" || return
  if ((help)); then
    wandb_resume::_sync_usage
    return 0
  fi
  wandb_resume::_sync_files || rc=$?
  ((rc == 3)) && return 0
  ((rc == 0)) || return "$rc"
  wandb_resume::_sync_read || return
  wandb_resume::_sync_plan
  wandb_resume::_sync_table
  wandb_resume::_sync_calls || rc=$?
  ((dry)) && printf '%s: --dry-run: nothing was run\n' "$prog" >&2
  return "$rc"
}

# sync's options. Arguments: as sync. Sets: dir, dry, help. Returns: 0, 2 usage
# error (said on stderr).
wandb_resume::_sync_options() {
  while (($#)); do
    case $1 in
      --dry-run) dry=1 ;;
      -h | --help) help=1 && return 0 ;;
      -?*)
        printf '%s: ❌ error: sync: unknown option: %s\n' "$prog" "$1" >&2
        return 2
        ;;
      *)
        if [[ -n $dir ]]; then
          printf '%s: ❌ error: sync takes one OUTPUT_DIR, not also: %s\n' "$prog" "$1" >&2
          return 2
        fi
        dir=$1
        ;;
    esac
    shift
  done
  if [[ -z $dir ]]; then
    printf "%s: ❌ error: sync needs an OUTPUT_DIR\nTry 'train-resume sync --help'.\n" "$prog" >&2
    return 2
  fi
}

# The W&B folder of `dir` and its offline run files. Sets: wdir, files.
# Returns: 0, 1 no W&B folder, 3 no run file: nothing to sync (said on stderr).
wandb_resume::_sync_files() {
  wdir=$dir/wandb
  [[ ${dir%/} == wandb || ${dir%/} == */wandb ]] && wdir=$dir
  if [[ ! -d $wdir ]]; then
    printf '%s: ❌ error: no W&B folder at %s\n' "$prog" "$wdir" >&2
    return 1
  fi
  files=("$wdir"/offline-run-*/run-*.wandb)
  if ((${#files[@]} == 0)); then
    printf '%s: nothing to sync: no offline-run-*/run-*.wandb in %s\n' "$prog" "$wdir" >&2
    return 3
  fi
}

# Read the run files (train_resume.wandb_records, with the python of the env that
# trains): one row a file, grouped by run id, each run's segments in the order W&B
# appends them. Reads: files. Sets: the s_* arrays, order. Returns: 0, 1 it cannot.
wandb_resume::_sync_read() {
  local pkg_root py out id i n rc=0
  local -a f=()
  pkg_root=${_WANDB_RESUME_LIB%/lib/wandb_resume}
  py=${TRAIN_RESUME_PYTHON:-python3}
  wb=${TRAIN_RESUME_WANDB:-wandb}
  if ! type -P -- "$py" >/dev/null; then
    printf '%s: ❌ error: sync: %s not found (set TRAIN_RESUME_PYTHON to the python of the env that trains)\n' "$prog" "$py" >&2
    return 1
  fi
  out=$(PYTHONPATH=$pkg_root${PYTHONPATH:+:$PYTHONPATH} "$py" -m train_resume.wandb_records "${files[@]}") || rc=$?
  if ((rc == 3)); then
    printf '%s: ❌ error: sync needs wandb to read the .wandb files, and %s cannot import it: install it there (pip install wandb), or set TRAIN_RESUME_PYTHON to the python of the env that trains\n' \
      "$prog" "$py" >&2
    return 1
  elif ((rc != 0)); then
    printf '%s: ❌ error: %s could not read the .wandb files (exit %d; is wandb installed for it? set TRAIN_RESUME_PYTHON)\n' \
      "$prog" "$py" "$rc" >&2
    return 1
  fi
  mapfile -t -d $'\1' f < <(printf '%s' "$out")
  n=$((${#f[@]} / 10))
  # (The order is decided in train_resume.wandb_records.segment_key.)
  for ((i = 0; i < n; i++)); do
    s_path+=("${f[10 * i]}")
    id=${s_path[i]##*/run-}
    s_id+=("${id%.wandb}")
    s_start+=("${f[10 * i + 2]}") s_status+=("${f[10 * i + 3]}") s_rows+=("${f[10 * i + 4]}")
    s_first+=("${f[10 * i + 5]}") s_last+=("${f[10 * i + 6]}") s_lstep+=("${f[10 * i + 7]}")
    s_size+=("${f[10 * i + 8]}") s_end+=("${f[10 * i + 9]}")
    if [[ -n ${f[10 * i + 1]} && ${f[10 * i + 1]} != "${s_id[i]}" ]]; then
      s_status[i]=other-id
    fi
    order+=("$i")
  done
}

# The plan: calls (folders of one run, in order), and what each folder gets (logged
# when it is skipped). Reads: the s_* arrays, order. Sets: call, c_folders, c_run,
# c_cut, s_action.
wandb_resume::_sync_plan() {
  local i id='' folder action cut=0
  for i in "${order[@]}"; do
    folder=${s_path[i]%/*}
    if [[ ${s_id[i]} != "$id" ]]; then
      id=${s_id[i]} cut=1
    fi
    case ${s_status[i]} in
      header-only | empty)
        action='skip: no complete record (killed before W&B wrote its first 32 KiB block); its rows are lost'
        ;;
      not-wandb | unreadable) action='skip: not a W&B run file' ;;
      other-id) action='skip: its run record names another run' ;;
      *)
        if [[ -e ${s_path[i]}.synced ]]; then
          action='skip: synced before (.wandb.synced)'
        else
          if ((cut)); then
            call=$((call + 1)) cut=0
            c_folders[call]='' c_run[call]=$id c_cut[call]=0
          fi
          c_folders[call]+=$folder$'\1'
          action="call $call"
          if [[ ${s_status[i]} == truncated ]]; then
            cut=1 c_cut[call]=1
            action+=" (ends inside a record: rows after global step ${s_last[i]:-?} lost)"
            wandb_resume::_log warn warn "${folder##*/}: the file ends inside a record (a SIGKILL mid-write): $((s_size[i] - s_end[i])) bytes after its last complete record are not synced, so the rows logged after global step ${s_last[i]:-?} (_step ${s_lstep[i]:-?}) are lost; wandb sync stops its call there, the later folders of run $id go in the next call"
          fi
        fi
        ;;
    esac
    [[ $action == skip:* ]] && wandb_resume::_log warn warn "${folder##*/}: ${action#skip: } (skipped)"
    s_action[i]=$action
  done
}

# Print the plan as a table (stdout). Reads: the s_* arrays, order.
wandb_resume::_sync_table() {
  local i started last folder
  printf '%-12s  %-44s  %-19s  %-11s  %4s  %-9s  %s\n' RUN FOLDER 'STARTED (UTC)' STATUS ROWS STEPS ACTION
  for i in "${order[@]}"; do
    started=-
    [[ -n ${s_start[i]} ]] && TZ=UTC printf -v started '%(%Y-%m-%d %H:%M:%S)T' "${s_start[i]%.*}"
    last=-
    [[ -n ${s_first[i]} ]] && last=${s_first[i]}-${s_last[i]}
    folder=${s_path[i]%/*}
    printf '%-12s  %-44s  %-19s  %-11s  %4s  %-9s  %s\n' "${s_id[i]}" "${folder##*/}" "$started" \
      "${s_status[i]}" "${s_rows[i]:-0}" "$last" "${s_action[i]}"
  done
}

# Print and (unless dry) run each call of wandb sync; an error stops the later calls
# of its run. Reads: call, c_folders, c_run, c_cut, dry, wb. Returns: 0, 1 one failed.
wandb_resume::_sync_calls() {
  local k crc said failed='' rc=0
  local -a cmd=()
  for ((k = 1; k <= call; k++)); do
    mapfile -t -d $'\1' cmd < <(printf '%s' "${c_folders[k]}")
    cmd=("$wb" sync "${cmd[@]}")
    if [[ $failed == *$'\1'"${c_run[k]}"$'\1'* ]]; then
      printf 'call %d: not run (an earlier call of run %s failed):' "$k" "${c_run[k]}"
      printf ' %q' "${cmd[@]}"
      printf '\n'
      continue
    fi
    printf 'call %d:' "$k"
    printf ' %q' "${cmd[@]}"
    printf '\n'
    ((dry)) && continue
    if ! type -P -- "$wb" >/dev/null; then
      printf '%s: ❌ error: sync: the wandb command (%s) is not found: install wandb (pip install wandb), or set TRAIN_RESUME_WANDB to its path\n' "$prog" "$wb" >&2
      return 1
    fi
    crc=0
    said=$("${cmd[@]}" 2>&1) || crc=$?
    [[ -z $said ]] || printf '%s\n' "$said"
    printf 'call %d: exit %d\n' "$k" "$crc"
    # A call ending with a cut file fails as expected when wandb says the file ends
    # inside a record; any other failure stops the later calls of the run.
    if ((crc != 0)) && [[ ${c_cut[k]} != 1 || $said != *'incomplete record'* ]]; then
      failed+=$'\1'${c_run[k]}$'\1'
      rc=1
    fi
  done
  return "$rc"
}
