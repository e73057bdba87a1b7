# shellcheck shell=bash
#
# wandb_resume.sh: decide whether a training job resumes, from which checkpoint,
# and which Weights & Biases run it continues; then export that decision.
#
# Source it from a job script (it changes nothing in your shell until you call it):
#
#   source /opt/train-resume/lib/wandb_resume.sh
#   wandb_resume::configure --output-dir "$OUT"     # decides, logs, exports
#
# Public functions: wandb_resume::configure, wandb_resume::usage,
# wandb_resume::latest_checkpoint, wandb_resume::run_id_from_wandb_dir,
# wandb_resume::run_id_from_trainer_state, wandb_resume::check_run_id,
# wandb_resume::supervise.
# Everything named wandb_resume::_* or _WANDB_RESUME_* is private.
#
# Guest manners: sourcing this file and calling its functions leave the caller's
# `$-`, BASHOPTS, IFS, OPTIND, traps and working directory as they were; functions
# return, never exit; nothing read from a file or a folder name is ever evaluated
# (the one `eval` puts back the caller's traps from bash's own `trap -p`);
# checkpoints are only read, never written.

[[ -n ${_WANDB_RESUME_LOADED:-} ]] && return 0
_WANDB_RESUME_LOADED=1
_WANDB_RESUME_VERSION=0.1.0

# The default order of the run id sources (WANDB_RESUME_SOURCES overrides it).
_WANDB_RESUME_DEFAULT_SOURCES=wandb-dir,trainer-state,env
# trainer_state.json files under 4 KiB are parsed whole; larger ones are read from
# their first 4 KiB (global_step) and a window of this many bytes at the tail (the
# keys after log_history), and parsed whole only when those are not conclusive.
_WANDB_RESUME_WINDOW=65536

#######################################
# Print the help text of bin/train-resume and wandb_resume::configure.
# Outputs: the help text on stdout.
#######################################
wandb_resume::usage() {
  cat <<'EOF'
Usage: train-resume [OPTIONS] [--] COMMAND [ARGS...]
       train-resume [OPTIONS] --explain [--json]
       wandb_resume::configure [OPTIONS]        (after: source lib/wandb_resume.sh)

Decide whether this job resumes training, from which checkpoint and which W&B
run it continues; export WANDB_RUN_ID / WANDB_RESUME / TRAIN_RESUME_CHECKPOINT;
then run COMMAND (exec: its exit status is ours). Every step is logged on stderr.

Options:
  -o, --output-dir DIR      the trainer's output dir, holding checkpoint-N folders
  -c, --checkpoint WHICH    PATH of a checkpoint, `latest` (the newest complete
                            one under the output dir) or `none` (a new run)
      --config FILE         the trainer's YAML or JSON config: its
                            resume_from_checkpoint (a path, true/latest) and,
                            without --output-dir, its output_dir are used
      --wandb-dir DIR       also look for W&B run folders in DIR/wandb (as for
                            WANDB_DIR), or in DIR itself when it is named wandb
      --resume-mode MODE    WANDB_RESUME on a resume: must (default) or allow
      --sources LIST        run id sources, in order, comma-separated, from
                            wandb-dir, trainer-state, env (default: all three)
  -n, --explain             decide and log, export and run nothing
      --json                print the decision as one JSON object (implies --explain)
  -q, --quiet               log nothing but errors
  -h, --help                show this help
      --version             show the version

Which checkpoint (first match wins): --checkpoint; RESUME_FROM_CHECKPOINT_DIR;
resume_from_checkpoint in --config; otherwise latest. A checkpoint is complete
when its trainer_state.json is readable, well formed and its global_step is N;
incomplete ones are skipped with a warning when looking for the latest, and are
an error when named explicitly. No checkpoint at all means a new run.

Which W&B run id (first source in order wins; disagreements are warned about):
  wandb-dir      run folders (run-<time>-<id>, offline-run-<time>-<id>) in
                 CHECKPOINT/wandb, OUTPUT_DIR/wandb, --wandb-dir, $WANDB_DIR/wandb;
                 the one latest-run points to, else the newest
  trainer-state  trainer_state.json: stateful_callbacks.*.args.wandb_run_id,
                 then a top-level wandb_run_id
  env            an existing WANDB_RUN_ID

Environment:
  RESUME_FROM_CHECKPOINT_DIR  the checkpoint to resume (as --checkpoint)
  WANDB_RESUME_SOURCES        as --sources
  WANDB_RESUME_MODE           as --resume-mode
  WANDB_RESUME_LANG           en or zh (default: zh when LC_ALL/LANG start with zh)
  WANDB_DIR                   where W&B keeps its run folders (DIR/wandb)
  TRAIN_RESUME_SHIM           0: run `python ...` COMMANDs as given, not through
                              the shim (python -m train_resume)

Exported on a resume: WANDB_RUN_ID=<id>, WANDB_RESUME=must,
TRAIN_RESUME_CHECKPOINT=<absolute path>, TRAIN_RESUME_RUN_ID_SOURCE=<source>.
Resume without a run id: WANDB_RESUME=allow (and the checkpoint).
New run: WANDB_RESUME=allow; TRAIN_RESUME_* unset; WANDB_RUN_ID not set by us.

--explain --json prints:
  {"mode": "resume"|"new", "checkpoint": PATH|null, "run_id": ID|null,
   "run_id_source": "wandb-dir"|"trainer-state"|"env"|null,
   "wandb_resume": "must"|"allow",
   "skipped": [{"path": PATH, "reason": TEXT}...], "warnings": [TEXT...]}

Exit status: 0 decided (or COMMAND's own status), 1 the decision failed (an
explicit checkpoint is unusable, the output dir unreadable, jq missing, ...),
2 usage error.
EOF
}

#######################################
# Decide, log and export (see wandb_resume::usage for the options).
# Arguments: OPTIONS (no COMMAND: that is bin/train-resume's part).
# Outputs: logs on stderr; with --explain --json, the decision on stdout.
# Returns: 0 decided, 1 the decision failed (nothing exported), 2 usage error.
# Globals: reads RESUME_FROM_CHECKPOINT_DIR, WANDB_RESUME_SOURCES,
#   WANDB_RESUME_MODE, WANDB_RESUME_LANG, WANDB_DIR, WANDB_RUN_ID, LANG, LC_ALL;
#   exports WANDB_RUN_ID, WANDB_RESUME, TRAIN_RESUME_CHECKPOINT,
#   TRAIN_RESUME_RUN_ID_SOURCE.
#######################################
wandb_resume::configure() {
  wandb_resume::_guest wandb_resume::_configure library "$@"
}

#######################################
# The body of bin/train-resume: as configure, plus --help, --version and a
# COMMAND, which it stores in _WANDB_RESUME_EXEC for the caller to exec.
# Arguments: OPTIONS [--] [COMMAND [ARGS...]]
# Returns: as configure.
#######################################
wandb_resume::cli() {
  _WANDB_RESUME_EXEC=()
  wandb_resume::_guest wandb_resume::_configure cli "$@"
}

#######################################
# Print the newest complete checkpoint-N under an output dir.
# Arguments: OUTPUT_DIR
# Outputs: its path on stdout (nothing when there is none); skips on stderr.
# Returns: 0 (also when there is none), 1 when the dir cannot be read.
#######################################
wandb_resume::latest_checkpoint() {
  wandb_resume::_guest wandb_resume::_latest_checkpoint_cmd "$@"
}

#######################################
# Print the run id found in the W&B run folders of a dir (a `wandb` folder).
# Arguments: DIR
# Outputs: the id on stdout; what was skipped on stderr.
# Returns: 0 found, 1 none found.
#######################################
wandb_resume::run_id_from_wandb_dir() {
  wandb_resume::_guest wandb_resume::_run_id_from_wandb_dir_cmd "$@"
}

#######################################
# Print the run id recorded in a trainer_state.json.
# Arguments: FILE
# Outputs: the id on stdout; what was skipped on stderr.
# Returns: 0 found, 1 none found or the file is unusable.
#######################################
wandb_resume::run_id_from_trainer_state() {
  wandb_resume::_guest wandb_resume::_run_id_from_trainer_state_cmd "$@"
}

#######################################
# Check a run id against W&B's rules.
# Arguments: ID
# Outputs: on stdout, why it is invalid (nothing when valid).
# Returns: 0 valid, 1 invalid.
#######################################
wandb_resume::check_run_id() {
  wandb_resume::_guest wandb_resume::_check_run_id_cmd "$@"
}

#######################################
# Run a training command under supervision in a (SLURM) batch script: forward the
# pre-timeout or preemption signal to it for a graceful save-and-stop, wait for it,
# then requeue the job unless the run is finished (DONE marker in the output dir)
# or SLURM_RESTART_COUNT reached the cap. A finished run writes DONE and is never
# run or requeued again.
# Arguments: [--output-dir DIR] [--max-restarts N] [--signal SIG] [--] COMMAND...
# Outputs: logs on stderr.
# Returns: COMMAND's exit status; 0 when DONE was already there; 2 usage error.
# Globals: reads SLURM_JOB_ID, SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID,
#   SLURM_RESTART_COUNT. Its traps for SIG and TERM last while it runs; the
#   caller's are put back.
#######################################
wandb_resume::supervise() {
  local _wr_traps _wr_rc=0
  _wr_traps=$(trap -p)
  wandb_resume::_guest wandb_resume::_supervise "$@" || _wr_rc=$?
  # Put back the caller's traps: `trap -p` printed them as shell code (bash's own
  # output, not data from a file).
  trap - USR1 USR2 TERM INT HUP
  eval "$_wr_traps"
  unset _WANDB_RESUME_STOP
  return "$_wr_rc"
}

# --- private: guest manners ---------------------------------------------------

# Run a function with our own shell options, then put the caller's back.
# `local -` restores the `set` options; shopt options are saved and restored here.
wandb_resume::_guest() {
  local -
  set +e +u +f +o pipefail
  local _wr_opt _wr_rc=0
  local -a _wr_on=() _wr_off=()
  for _wr_opt in nullglob failglob dotglob nocaseglob nocasematch extglob globstar; do
    if shopt -q "$_wr_opt"; then _wr_on+=("$_wr_opt"); else _wr_off+=("$_wr_opt"); fi
  done
  shopt -s nullglob extglob
  shopt -u failglob dotglob nocaseglob nocasematch globstar
  local IFS=$' \t\n'
  # Byte order, byte lengths and plain-ASCII character classes everywhere; the
  # caller's locale is read first (_lang) for the language of the log.
  local _wr_lang_env="${WANDB_RESUME_LANG:-}|${LC_ALL:-}|${LANG:-}"
  local _wr_lc_all=${LC_ALL-} _wr_lc_all_set=${LC_ALL+1}
  local LC_ALL=C
  "$@" || _wr_rc=$?
  shopt -u "${_wr_off[@]}"
  ((${#_wr_on[@]} == 0)) || shopt -s "${_wr_on[@]}"
  return "$_wr_rc"
}

# --- private: messages --------------------------------------------------------

# Print a log line on stderr in the caller's language, unless quiet.
# Arguments: LEVEL (info|warn|error) KEY [ARGS...]
wandb_resume::_log() {
  local level=$1 key=$2 fmt
  shift 2
  [[ $level != error && ${quiet:-0} == 1 ]] && return 0
  wandb_resume::_fmt "$key"
  # shellcheck disable=SC2059 # the format is one of ours, from _fmt; data are arguments
  printf "%s: ${fmt}\n" "${_WANDB_RESUME_PROG:-train-resume}" "$@" >&2
}

# Set `fmt` (the caller's local) to the printf format of a message KEY.
wandb_resume::_fmt() {
  local lang=en
  case ${WANDB_RESUME_LANG:-} in
    zh*) lang=zh ;;
    '')
      local l=${_wr_lang_env#*|}
      [[ ${l%%|*} == zh* || (-z ${l%%|*} && ${l#*|} == zh*) ]] && lang=zh
      ;;
  esac
  if [[ $lang == zh ]]; then
    case $1 in
      output_dir) fmt='📂 输出目录: %s' ;;
      resume) fmt='🔄 检测到checkpoint恢复: %s (%s)' ;;
      looking) fmt='🔍 尝试从%s提取WandB run ID' ;;
      found) fmt='✅ 找到WandB run ID: %s (来源: %s, %s)' ;;
      agrees) fmt='✅ %s 中的run ID一致: %s' ;;
      disagree) fmt='⚠️ run ID不一致: %s (%s: %s) 与 %s (%s: %s); 按顺序使用 %s' ;;
      export) fmt='🔧 设置环境变量: %s=%s' ;;
      would_export) fmt='🔧 (--explain) 将设置环境变量: %s=%s' ;;
      unset) fmt='🔧 取消环境变量: %s (%s)' ;;
      would_unset) fmt='🔧 (--explain) 将取消环境变量: %s (%s)' ;;
      configured) fmt='✅ WandB恢复配置完成!' ;;
      explained) fmt='✅ WandB恢复配置已确定 (--explain: 未导出, 未运行)' ;;
      new) fmt='🆕 开始新的训练会话 (%s)' ;;
      notfound) fmt='❌ 未能找到WandB run ID (已查找: %s); 将以 allow 模式继续' ;;
      skip) fmt='⚠️ 跳过 %s: %s' ;;
      d_newest) fmt='%s 中最新的完整checkpoint' ;;
      d_chosen) fmt='由 %s 指定' ;;
      d_ignored) fmt='%s none: 忽略已有的checkpoint' ;;
      d_no_complete) fmt='%s 中没有完整的checkpoint' ;;
      d_none_in) fmt='%s 中没有checkpoint' ;;
      d_not_yet) fmt='%s 尚不存在' ;;
      warn) fmt='⚠️ %s' ;;
      error) fmt='❌ 错误: %s' ;;
      *) fmt='%s' ;;
    esac
    return 0
  fi
  case $1 in
    output_dir) fmt='📂 output dir: %s' ;;
    resume) fmt='🔄 resuming from checkpoint: %s (%s)' ;;
    looking) fmt='🔍 looking for the W&B run id in %s' ;;
    found) fmt='✅ found W&B run id: %s (source %s: %s)' ;;
    agrees) fmt='✅ %s agrees: %s' ;;
    disagree) fmt='⚠️ run ids disagree: %s (%s: %s) and %s (%s: %s); following the order: %s' ;;
    export) fmt='🔧 export %s=%s' ;;
    would_export) fmt='🔧 would export %s=%s (--explain: nothing exported)' ;;
    unset) fmt='🔧 unset %s (%s)' ;;
    would_unset) fmt='🔧 would unset %s (%s; --explain: nothing changed)' ;;
    configured) fmt='✅ W&B resume configured' ;;
    explained) fmt='✅ W&B resume decided (--explain: nothing exported, nothing run)' ;;
    new) fmt='🆕 new training run (%s)' ;;
    notfound) fmt='❌ no W&B run id found (searched: %s); continuing with WANDB_RESUME=allow' ;;
    skip) fmt='⚠️ skipping %s: %s' ;;
    d_newest) fmt='the newest complete checkpoint in %s' ;;
    d_chosen) fmt='chosen by %s' ;;
    d_ignored) fmt='%s none: checkpoints are ignored' ;;
    d_no_complete) fmt='no complete checkpoint in %s' ;;
    d_none_in) fmt='no checkpoint in %s' ;;
    d_not_yet) fmt='%s does not exist yet' ;;
    warn) fmt='⚠️ %s' ;;
    error) fmt='❌ error: %s' ;;
    *) fmt='%s' ;;
  esac
}

# Set `detail` (the caller's local) to message KEY with ARGS, in the log's language.
wandb_resume::_detail() {
  local fmt
  wandb_resume::_fmt "$1"
  shift
  # shellcheck disable=SC2059 # the format is one of ours, from _fmt
  printf -v detail "$fmt" "$@"
}

# Record a warning (for --json) and log it. Arguments: TEXT
wandb_resume::_warn() {
  warnings+=("$1")
  wandb_resume::_log warn warn "$1"
}

# Record a skipped path with its reason (for --json) and log it. Arguments: PATH REASON
wandb_resume::_skip() {
  skipped+=("$1" "$2")
  wandb_resume::_log warn skip "$1" "$2"
}

# Describe why PATH cannot be read, with the owner and mode to check.
# Arguments: PATH. Outputs: the reason on stdout.
wandb_resume::_permission_reason() {
  local owner_mode
  owner_mode=$(stat -c '%U:%G %A' -- "$1" 2>/dev/null) || owner_mode='unknown owner and mode'
  printf 'permission denied (owner %s; running as %s): check with ls -la, then chmod or run as the owner' \
    "$owner_mode" "$(id -un 2>/dev/null || printf 'uid %s' "$EUID")"
}

# --- private: run ids ---------------------------------------------------------

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
    wandb_resume::_skip "$f" 'not a directory'
    return 1
  fi
  if [[ ! -r $f || ! -x $f ]]; then
    wandb_resume::_skip "$f" "$(wandb_resume::_permission_reason "$f")"
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
    wandb_resume::_skip "$f" 'no run-<id>.wandb file inside (the run never started writing?)'
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

# Find the run id in one `wandb` folder of W&B run folders: the folder latest-run
# points to, else the newest by time, else the next newest ...
# Arguments: DIR
# Sets (caller's locals): w_id, w_folder; appends to skipped/warnings.
# Returns: 0 found, 1 not.
wandb_resume::_scan_wandb_dir() {
  local dir=$1 f n latest='' ta tb
  local t='[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]_[0-9][0-9][0-9][0-9][0-9][0-9]'
  local GLOBSORT=name # bash 5.3: sort globs by name, as bash 5.2 always does
  local -a online=() offline=()
  w_id='' w_folder=''
  [[ -d $dir ]] || return 1
  if [[ ! -r $dir || ! -x $dir ]]; then
    wandb_resume::_skip "$dir" "$(wandb_resume::_permission_reason "$dir")"
    return 1
  fi
  # Each glob comes back sorted by name, so by time (YYYYMMDD_HHMMSS) and, within a
  # second, the plain folder before its -1, -2 ... copies: the newest is last.
  # shellcheck disable=SC2206 # $t is a glob pattern, meant to expand
  online=("$dir"/run-$t-?*) offline=("$dir"/offline-run-$t-?*)
  n=$((${#online[@]} + ${#offline[@]}))
  ((n > 0)) || return 1
  if [[ -L $dir/latest-run ]]; then
    if [[ ! -e $dir/latest-run ]]; then
      wandb_resume::_warn "$dir/latest-run leads nowhere (dangling); using the newest run folder instead"
    else
      # Usually one of the newest two: test those first, then all.
      for f in "${online[@]: -1}" "${offline[@]: -1}" "${online[@]}" "${offline[@]}"; do
        if [[ $dir/latest-run -ef $f ]]; then
          latest=$f
          break
        fi
      done
      [[ -n $latest ]] ||
        wandb_resume::_warn "$dir/latest-run points outside the run folders of $dir; using the newest run folder instead"
    fi
  fi
  if [[ -z $latest ]] || ! wandb_resume::_try_run_folder "$latest"; then
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

# --- private: trainer_state.json ---------------------------------------------

# The jq program that reads a trainer_state.json. $mode: "whole" (raw text of a
# small file), "window" (raw text of the file's tail, $head = its first bytes) or
# "full" (the file parsed by jq). It prints fields, each ended by the byte 0x01
# (a byte no valid run id holds; 0x00 and 0x01 in data become 0x02): status, detail,
# global_step, the number of run ids, then for each: where, type, value.
# status is ok, bad (not usable) or more (the windows are not conclusive).
# shellcheck disable=SC2016 # jq variables, not shell ones
_WANDB_RESUME_JQ_STATE='
def parse: try {v: fromjson} catch {err: (tostring | split(" (while parsing")[0])};
def ids:
  [ ((.stateful_callbacks // {}) | if type == "object" then to_entries else [] end
      | sort_by(if .key == "WandbResumeCallback" then 0 else 1 end) | .[]
      | .key as $k | .value | (if type == "array" then .[] else . end)
      | select(type == "object") | .args | select(type == "object")
      | select(has("wandb_run_id") and .wandb_run_id != null)
      | ["stateful_callbacks.\($k).args.wandb_run_id", .wandb_run_id]),
    (select(has("wandb_run_id") and .wandb_run_id != null) | ["wandb_run_id", .wandb_run_id]) ];
def out($status; $detail; $step; $ids):
  ([$status, $detail, $step, ($ids | length | tostring)]
   + [$ids[] | .[0], (.[1] | type), (.[1] | if type == "string" then . else tojson end)])[]
  | (explode | map(if . < 2 then 2 else . end) | implode), "\u0001";
def step_of($o):
  if ($o | has("global_step") | not) then {err: "global_step missing from trainer_state.json"}
  elif ($o.global_step | type) != "number" then
    {err: "global_step is a \($o.global_step | type), not a number"}
  elif ($o.global_step | floor) != $o.global_step or $o.global_step < 0 then
    {err: "global_step \($o.global_step) is not a whole number"}
  else {v: ($o.global_step | tostring)} end;
def from_object($o):
  if ($o | type) != "object" then out("bad"; "JSON but not an object (\($o | type))"; ""; [])
  else step_of($o) as $s
    | if $s.err then out("bad"; $s.err; ""; [])
      else out("ok"; ""; $s.v; $o | ids) end end;
if $mode == "full" then from_object(.)
elif split("\u0000") | length > 1 then
  out("bad"; "NUL bytes in trainer_state.json (a save cut short by a crash?)"; ""; [])
elif $mode == "whole" then
  if test("^[[:space:]]*$") then out("bad"; "trainer_state.json is empty"; ""; [])
  else parse as $p
    | if $p.err then out("bad"; "not valid JSON (truncated?): \($p.err)"; ""; [])
      else from_object($p.v) end end
else
  # The tail window: from its first top-level key line ("  \"key\": ...", HF writes
  # indent 2) to the end, inside braces, is an object of the keys after that line.
  (split("\n  \"") | .[1:]) as $keys
  | (if $keys == [] then {err: "no key"} else "{\n  \"" + ($keys | join("\n  \"")) | parse end) as $t
  | ($head | [match("\n  \"global_step\": ([0-9]+),?\n")] | .[0].captures[0].string) as $hs
  | if $t.err or ($head | test("^[[:space:]]*\\{") | not) then out("more"; ""; ""; [])
    elif ($t.v | has("global_step")) then from_object($t.v)
    elif $hs == null then out("more"; ""; ""; [])
    else out("ok"; ""; $hs; $t.v | ids) end
end'

# Read a trainer_state.json.
# Arguments: FILE
# Sets (caller's locals): st_status (ok|missing|bad), st_reason, st_step,
#   st_where/st_type/st_value (arrays: the run ids found, in order).
wandb_resume::_read_state() {
  local file=$1 head out n i
  local -a fields=()
  st_status=bad st_reason='' st_step='' st_where=() st_type=() st_value=()
  if [[ ! -e $file && ! -L $file ]]; then
    st_status=missing
    st_reason='trainer_state.json missing (HF writes it last: the save was probably interrupted)'
    return 0
  fi
  if [[ ! -f $file ]]; then
    st_reason='trainer_state.json is not a regular file'
    [[ -L $file && ! -e $file ]] && st_reason='trainer_state.json is a symlink that leads nowhere'
    return 0
  fi
  if [[ ! -r $file ]]; then
    st_reason="trainer_state.json: $(wandb_resume::_permission_reason "$file")"
    return 0
  fi
  if ! command -v jq >/dev/null 2>&1; then
    st_reason='jq not found on PATH: trainer_state.json cannot be read (install jq: apt-get install jq, or see make deps)'
    return 0
  fi
  if ! read -r -d '' -N 4096 head <"$file" 2>/dev/null; then
    out=$(jq -j -R -s --arg mode whole --arg head '' "$_WANDB_RESUME_JQ_STATE" <"$file" 2>&1) ||
      out="bad"$'\1'"jq failed: ${out//$'\n'/ }"$'\1'
  else
    out=$(tail -c "$_WANDB_RESUME_WINDOW" -- "$file" |
      jq -j -R -s --arg mode window --arg head "$head" "$_WANDB_RESUME_JQ_STATE" 2>&1) ||
      out="bad"$'\1'"jq failed: ${out//$'\n'/ }"$'\1'
    if [[ $out == more$'\1'* ]]; then
      out=$(jq -j --arg mode full --arg head '' "$_WANDB_RESUME_JQ_STATE" "$file" 2>&1) ||
        out="bad"$'\1'"not valid JSON (truncated?): ${out//$'\n'/ }"$'\1'
    fi
  fi
  mapfile -t -d $'\1' fields <<<"$out"
  st_status=${fields[0]:-bad}
  st_reason=${fields[1]:-}
  st_step=${fields[2]:-}
  n=${fields[3]:-0}
  [[ $n =~ ^[0-9]+$ ]] || n=0
  for ((i = 0; i < n; i++)); do
    st_where+=("${fields[4 + 3 * i]:-}")
    st_type+=("${fields[5 + 3 * i]:-}")
    st_value+=("${fields[6 + 3 * i]:-}")
  done
  [[ $st_status == ok || -n $st_reason ]] || st_reason='trainer_state.json could not be read'
}

wandb_resume::_run_id_from_trainer_state_cmd() {
  local st_status st_reason st_step t_id t_where id_problem quiet=0
  local -a st_where st_type st_value skipped=() warnings=()
  (($# == 1)) || {
    printf 'usage: wandb_resume::run_id_from_trainer_state FILE\n' >&2
    return 2
  }
  wandb_resume::_read_state "$1"
  if [[ $st_status != ok ]]; then
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

# --- private: checkpoints -----------------------------------------------------

# Check that DIR is a usable checkpoint; when its name is checkpoint-N, that its
# global_step is N. Arguments: DIR
# Sets: c_reason ("" when complete) and the st_* of its trainer_state.json.
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
  else
    wandb_resume::_read_state "$dir/trainer_state.json"
    if [[ $st_status != ok ]]; then
      c_reason=$st_reason
    else
      name=${dir%/}
      name=${name##*/}
      if [[ $name =~ ^checkpoint-([0-9]+)$ && ${BASH_REMATCH[1]} != "$st_step" ]]; then
        c_reason="global_step is $st_step, but the folder is $name (a copy, or a half-written save?)"
      fi
    fi
  fi
  [[ -z $c_reason ]]
}

# Find the newest complete checkpoint-N in an output dir.
# Arguments: OUTPUT_DIR
# Sets: l_path ("" when none), l_count (how many checkpoint-* names were seen), and
#   the st_* of the chosen one; appends to skipped.
# Returns: 0 (also when none), 1 when the dir cannot be read.
wandb_resume::_latest() {
  local out=${1%/} f name c_reason
  local GLOBSORT=name # bash 5.3: sort globs by name, as bash 5.2 always does
  l_path='' l_count=0
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
  for f in "${bad[@]}"; do
    if [[ ${f##*/checkpoint-} == +([0-9]) ]]; then
      wandb_resume::_skip "$f" 'step number with a leading zero (HF never writes one)'
    else
      wandb_resume::_skip "$f" 'not named checkpoint-<number>'
    fi
  done
  ((${#good[@]} > 0)) || return 0
  if ! command -v jq >/dev/null 2>&1; then
    error="jq not found on PATH: it is needed to check the trainer_state.json of the ${#good[@]} checkpoint(s) in $out, so no safe decision can be made (without jq only the wandb-dir and env run id sources work). Install jq: apt-get install jq (or see make deps)"
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
      elif wandb_resume::_check_checkpoint "$f"; then
        l_path=$f
        return 0
      else
        wandb_resume::_skip "$f" "$c_reason"
      fi
    done
  done
  return 0
}

wandb_resume::_latest_checkpoint_cmd() {
  local l_path l_count error quiet=0 st_status st_reason st_step
  local -a skipped=() warnings=() st_where st_type st_value
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

# Read resume_from_checkpoint and output_dir from a trainer config (YAML or JSON,
# top-level keys only). Arguments: FILE. Sets: cfg_resume, cfg_output_dir (unset
# when absent or null), error. Returns 1 when the file cannot be read.
wandb_resume::_read_config() {
  local file=$1 line key value out
  local -a fields=()
  if [[ ! -e $file ]]; then
    error="config file $file: no such file"
    return 1
  elif [[ ! -f $file ]]; then
    error="config file $file: not a regular file"
    return 1
  elif [[ ! -r $file ]]; then
    error="config file $file: $(wandb_resume::_permission_reason "$file")"
    return 1
  fi
  IFS='' read -r -N 1024 line <"$file"
  if [[ $file == *.json || $line =~ ^[[:space:]]*\{ ]]; then
    if ! command -v jq >/dev/null 2>&1; then
      error="config file $file: jq not found on PATH (needed to read a JSON config)"
      return 1
    fi
    # shellcheck disable=SC2016 # jq program
    out=$(jq -j 'if type != "object" then error("not a JSON object") else . end
      | (.resume_from_checkpoint, .output_dir)
      | (if . == null then "\u0002" elif type == "string" then . else tojson end), "\u0001"' \
      "$file" 2>&1) || {
      error="config file $file is not usable JSON: ${out//$'\n'/ }"
      return 1
    }
    mapfile -t -d $'\1' fields <<<"$out"
    [[ ${fields[0]:-} == $'\2' ]] || cfg_resume=${fields[0]:-}
    [[ ${fields[1]:-} == $'\2' ]] || cfg_output_dir=${fields[1]:-}
    return 0
  fi
  while IFS='' read -r line || [[ -n $line ]]; do
    [[ $line =~ ^(resume_from_checkpoint|output_dir):([[:space:]].*)?$ ]] || continue
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    value=${value#"${value%%[![:space:]]*}"}
    if [[ $value =~ ^\"([^\"]*)\" || $value =~ ^\'([^\']*)\' ]]; then
      value=${BASH_REMATCH[1]}
    else
      value=${value%%[[:space:]]#*}
      value=${value%"${value##*[![:space:]]}"}
      [[ $value == @(null|Null|NULL|~) ]] && value=''
    fi
    if [[ $key == resume_from_checkpoint ]]; then
      cfg_resume=$value
    else
      cfg_output_dir=$value
    fi
  done <"$file"
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

# Read the value of an option into `value`; the caller shifts by `take`.
# Arguments: NAME "$@" (the option and what follows it)
wandb_resume::_optarg() {
  local name=$1
  shift
  if [[ $1 == --*=* ]]; then
    value=${1#*=}
    take=1
  elif (($# >= 2)); then
    value=$2
    take=2
  else
    error="option $name needs a value"
    return 2
  fi
}

# Set `json` (the caller's local) to STRING as a JSON string literal; with
# --null, an empty STRING is null.
wandb_resume::_json_string() {
  local str c i out=''
  if [[ $1 == --null ]]; then
    shift
    [[ -z $1 ]] && json=null && return 0
  fi
  str=${1//\\/\\\\}
  str=${str//\"/\\\"}
  if [[ $str == *[[:cntrl:]]* ]]; then
    for ((i = 0; i < ${#str}; i++)); do
      c=${str:i:1}
      case $c in
        $'\n') out+='\n' ;;
        $'\t') out+='\t' ;;
        $'\r') out+='\r' ;;
        [[:cntrl:]]) printf -v c '\\u%04x' "'$c" && out+=$c ;;
        *) out+=$c ;;
      esac
    done
    str=$out
  fi
  json=\"$str\"
}

# Print the decision as the JSON object of the --explain --json contract (in bash:
# no process for it). Reads the caller's mode, ckpt, run_id, run_id_source,
# wandb_resume, skipped and warnings.
wandb_resume::_print_json() {
  local json i sep='' out="{\"mode\": \"$mode\""
  wandb_resume::_json_string --null "$ckpt"
  out+=", \"checkpoint\": $json"
  wandb_resume::_json_string --null "$run_id"
  out+=", \"run_id\": $json"
  wandb_resume::_json_string --null "$run_id_source"
  out+=", \"run_id_source\": $json, \"wandb_resume\": \"$wandb_resume\", \"skipped\": ["
  for ((i = 0; i < ${#skipped[@]}; i += 2)); do
    wandb_resume::_json_string "${skipped[i]}"
    out+="$sep{\"path\": $json, "
    wandb_resume::_json_string "${skipped[i + 1]}"
    out+="\"reason\": $json}"
    sep=', '
  done
  out+='], "warnings": ['
  sep=''
  for i in "${warnings[@]}"; do
    wandb_resume::_json_string "$i"
    out+="$sep$json"
    sep=', '
  done
  printf '%s]}\n' "$out"
}

# Export NAME=VALUE (or, with --explain, say it would). Arguments: NAME VALUE
wandb_resume::_export() {
  if ((explain)); then
    wandb_resume::_log info would_export "$1" "$2"
  else
    export "$1=$2"
    wandb_resume::_log info export "$1" "$2"
  fi
}

# Unset NAME when set (or, with --explain, say it would). Arguments: NAME WHY
wandb_resume::_unset() {
  [[ -n ${!1+set} ]] || return 0
  if ((explain)); then
    wandb_resume::_log info would_unset "$1" "$2"
  else
    unset "$1"
    wandb_resume::_log info unset "$1" "$2"
  fi
}

# The decision. Arguments: CALLER (library|cli) OPTIONS [--] [COMMAND...]
wandb_resume::_configure() {
  local caller=$1
  shift
  local output_dir='' checkpoint='' config='' wandb_dir='' value take error=''
  local resume_mode=${WANDB_RESUME_MODE:-must}
  local sources=${WANDB_RESUME_SOURCES:-$_WANDB_RESUME_DEFAULT_SOURCES}
  local explain=0 json=0 quiet=0 src dir abs i
  local cfg_resume='' cfg_output_dir='' want how out_how
  local mode ckpt='' run_id='' run_id_source='' wandb_resume=allow detail
  local l_path l_count c_reason st_status st_reason st_step t_id t_where w_id w_folder id_problem
  local -a skipped=() warnings=() st_where=() st_type=() st_value=() source_list=()
  local -a cand_src=() cand_id=() cand_detail=() searched=() dirs=()

  while (($#)); do
    case $1 in
      -o | --output-dir | --output-dir=*)
        wandb_resume::_optarg --output-dir "$@" || break
        output_dir=$value
        [[ -n $output_dir ]] || error='--output-dir needs a non-empty value'
        shift "$take"
        ;;
      -c | --checkpoint | --checkpoint=*)
        wandb_resume::_optarg --checkpoint "$@" || break
        checkpoint=$value
        [[ -n $checkpoint ]] || error='--checkpoint needs a non-empty value'
        shift "$take"
        ;;
      --config | --config=*)
        wandb_resume::_optarg --config "$@" || break
        config=$value
        shift "$take"
        ;;
      --wandb-dir | --wandb-dir=*)
        wandb_resume::_optarg --wandb-dir "$@" || break
        wandb_dir=$value
        shift "$take"
        ;;
      --resume-mode | --resume-mode=*)
        wandb_resume::_optarg --resume-mode "$@" || break
        resume_mode=$value
        shift "$take"
        ;;
      --sources | --sources=*)
        wandb_resume::_optarg --sources "$@" || break
        sources=$value
        shift "$take"
        ;;
      -n | --explain) explain=1 && shift ;;
      --json) json=1 explain=1 && shift ;;
      -q | --quiet) quiet=1 && shift ;;
      -h | --help)
        wandb_resume::usage
        return 0
        ;;
      --version)
        printf 'train-resume %s\n' "$_WANDB_RESUME_VERSION"
        return 0
        ;;
      --)
        shift
        break
        ;;
      -?*)
        error="unknown option: $1"
        break
        ;;
      *) break ;;
    esac
    [[ -z $error ]] || break
  done
  if [[ -z $error ]]; then
    if [[ $caller == library ]] && (($#)); then
      error="unexpected argument: $1 (wandb_resume::configure takes options only; a COMMAND is bin/train-resume's)"
    elif [[ $caller == cli ]] && (($# == 0)) && ((! explain)); then
      error='no COMMAND to run (give one after --, or use --explain)'
    elif [[ $resume_mode != @(must|allow) ]]; then
      error="resume mode must be must or allow, not: $resume_mode"
    else
      IFS=, read -r -a source_list <<<"$sources"
      ((${#source_list[@]} > 0)) || error='no run id sources given (--sources / WANDB_RESUME_SOURCES)'
      for src in "${source_list[@]}"; do
        [[ $src == @(wandb-dir|trainer-state|env) ]] ||
          error="unknown run id source: $src (known: wandb-dir, trainer-state, env)"
      done
    fi
  fi
  if [[ -n $error ]]; then
    wandb_resume::_log error error "$error"
    printf '%s\n' "Try 'train-resume --help'." >&2
    return 2
  fi

  # 1. Which checkpoint.
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
  elif [[ -n $cfg_resume && $cfg_resume != @(false|False|FALSE|no|No|NO) ]]; then
    want=$cfg_resume how="resume_from_checkpoint in $config"
    [[ $want == @(true|True|TRUE|yes|Yes|YES) ]] && want=latest
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
      elif ((l_count > 0)); then
        mode=new
        wandb_resume::_detail d_no_complete "$output_dir"
        wandb_resume::_warn "$l_count checkpoint-* folders in $output_dir, none complete: starting a new run"
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
      if ! wandb_resume::_check_checkpoint "$abs"; then
        wandb_resume::_log error error "checkpoint $abs (from $how) cannot be used: $c_reason"
        return 1
      fi
      mode=resume ckpt=$abs
      wandb_resume::_detail d_chosen "$how"
      ;;
  esac

  if [[ $mode == new ]]; then
    wandb_resume::_log info new "$detail"
  else
    wandb_resume::_log info resume "$ckpt" "$detail"

    # 2. Which W&B run id: every source in order; the first one found wins.
    for src in "${source_list[@]}"; do
      case $src in
        wandb-dir)
          dirs=("$ckpt/wandb" "$output_dir/wandb")
          [[ -n $wandb_dir ]] && dirs+=("${wandb_dir%/}/wandb")
          [[ ${wandb_dir%/} == ?(*/)wandb ]] && dirs+=("${wandb_dir%/}")
          [[ -n ${WANDB_DIR:-} ]] && dirs+=("${WANDB_DIR%/}/wandb")
          for ((i = 0; i < ${#dirs[@]}; i++)); do
            dir=${dirs[i]}
            for abs in "${dirs[@]:0:i}"; do
              [[ $abs == "$dir" || $abs -ef $dir ]] && continue 2
            done
            searched+=("$dir")
            wandb_resume::_log info looking "$dir"
            if wandb_resume::_scan_wandb_dir "$dir"; then
              cand_src+=(wandb-dir) cand_id+=("$w_id") cand_detail+=("$w_folder")
              break
            fi
          done
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
    if ((${#cand_id[@]} > 0)); then
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
    else
      local joined
      printf -v joined '%s, ' "${searched[@]}"
      wandb_resume::_log warn notfound "${joined%, }"
    fi
    wandb_resume::_check_space "$output_dir" "$ckpt"
  fi

  ((json)) && wandb_resume::_print_json

  # 3. Export (nothing has been exported before this point).
  if [[ -n $run_id ]]; then
    wandb_resume::_export WANDB_RUN_ID "$run_id"
    ((explain)) || _WANDB_RESUME_EXPORTED_ID=$run_id
  elif [[ -n ${WANDB_RUN_ID+set} ]]; then
    wandb_resume::_id_problem "$WANDB_RUN_ID"
    if [[ -n $id_problem ]]; then
      wandb_resume::_unset WANDB_RUN_ID "$id_problem: W&B would refuse to start with it"
    elif [[ $WANDB_RUN_ID == "${_WANDB_RESUME_EXPORTED_ID:-}" ]]; then
      wandb_resume::_unset WANDB_RUN_ID 'set by an earlier decision of ours'
    else
      wandb_resume::_log info note "🔧 WANDB_RUN_ID=$WANDB_RUN_ID was set before this decision; left as it is"
    fi
  fi
  wandb_resume::_export WANDB_RESUME "$wandb_resume"
  if [[ $mode == resume ]]; then
    wandb_resume::_export TRAIN_RESUME_CHECKPOINT "$ckpt"
  else
    wandb_resume::_unset TRAIN_RESUME_CHECKPOINT 'a new run'
  fi
  if [[ -n $run_id_source ]]; then
    wandb_resume::_export TRAIN_RESUME_RUN_ID_SOURCE "$run_id_source"
  else
    wandb_resume::_unset TRAIN_RESUME_RUN_ID_SOURCE 'no run id found'
  fi
  if ((explain)); then
    (($# == 0)) || wandb_resume::_log info note "▶ would run: $*"
    wandb_resume::_log info explained
  else
    wandb_resume::_log info configured
    [[ $caller == cli ]] && _WANDB_RESUME_EXEC=("$@")
  fi
  return 0
}

# --- private: supervision -----------------------------------------------------

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
