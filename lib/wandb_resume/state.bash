# shellcheck shell=bash
# shellcheck disable=SC2034 # a part: the decision's state is shared through the locals of its caller (decide.bash), which shellcheck cannot follow across files
#
# state.bash: reading a trainer_state.json (global_step and the run ids stored
# in it) with jq, fast on files of hundreds of MB.
# Part of lib/wandb_resume.sh.

# How a trainer_state.json is read, and what it costs (make bench prints it):
# - up to 4 KiB: parsed whole (jq -R, fromjson inside try).
# - larger: grep looks for NUL bytes in the whole file first (memchr speed: ~20 ms for
#   173 MB). Then, when the file is still exactly as the trainer saved it, bash reads
#   the first 4 KiB (BOM, global_step) and one jq reads the last _WANDB_RESUME_WINDOW
#   bytes (the keys after log_history), and the middle is not parsed. "As saved":
#   train_resume's callback records, right after each save, the file's size, inode,
#   mtime and ctime in OUTPUT_DIR/.train-resume/saved/checkpoint-N (a save writes
#   the file with json.dumps, one valid object; any later write changes its ctime,
#   which no user can set back). The windows only answer when they are
#   sure to give what a full parse gives: HF's layout (indent 2, keys sorted, so no
#   duplicate), the head closed before log_history, the tail starting right after
#   log_history's `],` with its first key at or before stateful_callbacks.
# - otherwise (no record, a file changed since, another layout), a full parse: jq (up
#   to _WANDB_RESUME_FULL_MAX bytes, ~75 ms a MB), or jq --stream (larger files:
#   slow, ~14 s for 173 MB, but small in memory). What jq parsed whole is also
#   checked for UTF-8 and for tokens Python's json refuses (grep, a few ms a MB).
# Every jq runs under `ulimit -v _WANDB_RESUME_MEM_KB`: a decision stays in tens of
# MB whatever the file. A jq (or grep) that fails, is killed or runs out of memory is
# an error of ours, never a damaged checkpoint.
_WANDB_RESUME_WINDOW=65536
_WANDB_RESUME_FULL_MAX=8388608

# The jq program that reads a trainer_state.json. $mode: "whole" (raw text of a
# small file), "window" (raw text of the file's tail, $head = its first bytes),
# "full" (jq -n: the values of the file) or "stream" (jq -n --stream: its events).
# It prints fields, each ended by the byte 0x01 (a byte no valid run id holds; 0x00
# and 0x01 in data become 0x02): status, detail, global_step, max_steps (a whole
# number >= 0, else empty), the number of run ids,
# then for each: where, type, value, wandb_step (stored beside the id: a whole number
# >= 0, else empty); and a last field "end" (so that a jq cut short
# is told from one that answered). status is ok, bad (not usable) or more (the
# windows are not sure).
# shellcheck disable=SC2016 # jq variables, not shell ones
_WANDB_RESUME_JQ_STATE='
def parse: try {v: fromjson} catch {err: (tostring | split(" (while parsing")[0])};
def ins: try repeat(input)
  catch (if . == "No more inputs" or . == "break" then empty else {parse_error: (tostring)} end);
def ids:
  [ ((.stateful_callbacks // {}) | if type == "object" then to_entries else [] end
      | sort_by(if .key == "WandbResumeCallback" then 0 else 1 end) | .[]
      | .key as $k | .value | (if type == "array" then .[] else . end)
      | select(type == "object") | .args | select(type == "object")
      | select(has("wandb_run_id") and .wandb_run_id != null)
      | ["stateful_callbacks.\($k).args.wandb_run_id", .wandb_run_id, .wandb_step]),
    (select(has("wandb_run_id") and .wandb_run_id != null) | ["wandb_run_id", .wandb_run_id, null]) ];
# A whole number >= 0 as text, else "".
def natural: if type == "number" and . >= 0 and floor == . then tostring else "" end;
def out($status; $detail; $step; $max; $ids):
  (([$status, $detail, $step, $max, ($ids | length | tostring)]
   + [$ids[] | .[0], (.[1] | type), (.[1] | if type == "string" then . else tojson end),
      (.[2] | natural)])[]
  | (explode | map(if . < 2 then 2 else . end) | implode), "\u0001"), "end\u0001";
def step_of($o):
  if ($o | has("global_step") | not) then {err: "global_step missing from trainer_state.json"}
  elif ($o.global_step | type) != "number" then
    {err: "global_step is a \($o.global_step | type), not a number"}
  elif ($o.global_step | floor) != $o.global_step or $o.global_step < 0 then
    {err: "global_step \($o.global_step) is not a whole number"}
  else {v: ($o.global_step | tostring)} end;
def from_object($o):
  if ($o | type) != "object" then out("bad"; "JSON but not an object (\($o | type))"; ""; ""; [])
  else step_of($o) as $s
    | if $s.err then out("bad"; $s.err; ""; ""; [])
      else out("ok"; ""; $s.v; $o.max_steps | natural; $o | ids) end end;
def two: out("bad"; "more than one JSON value in trainer_state.json (two saves in one file?)"; ""; ""; []);
def invalid($e):
  if ($e | test("Unexpected extra JSON values")) then two
  else out("bad"; "not valid JSON (truncated?): \($e | split(" (while parsing")[0])"; ""; ""; []) end;
# The names of the top-level keys (lines "  \"key\": " of indent 2) of a text.
def top_keys: [scan("\n  \"([^\"\\\\]*)\": ") | .[0]];
def sorted_strictly: . as $k | all(range(1; length); $k[. - 1] < $k[.]);
def whole:
  if test("^[[:space:]]*$") then out("bad"; "trainer_state.json is empty"; ""; ""; [])
  else parse as $p | if $p.err then invalid($p.err) else from_object($p.v) end end;
if $mode == "full" then
  # (input in try, not limit: a try catches the break of limit; and at the end of its
  # input, the jq 1.6 of Debian raises "break", not "No more inputs")
  def one: try {v: input}
    catch (if . == "No more inputs" or . == "break" then {none: true} else {parse_error: tostring} end);
  one as $a
  | if $a.none then out("bad"; "trainer_state.json is empty"; ""; ""; [])
    elif $a.parse_error then invalid($a.parse_error)
    else one as $b
      | if $b.none then from_object($a.v)
        elif $b.parse_error then invalid($b.parse_error)
        else two end end
elif $mode == "stream" then
  # Only the events of the keys we read, and those that end a top-level value.
  [ins | select((type == "object" and has("parse_error"))
      or (.[0] | length) == 0 or (length == 1 and (.[0] | length) == 1)
      or (.[0][0] | IN("global_step", "max_steps", "stateful_callbacks", "wandb_run_id")))] as $e
  | ([$e[] | select(type == "object")] | .[0].parse_error) as $err
  | ([$e[] | select(type == "array" and ((.[0] | length) == 0 or (length == 1 and (.[0] | length) == 1)))]
      | length) as $n
  | if $err != null then invalid($err)
    elif $n == 0 then out("bad"; "trainer_state.json is empty"; ""; ""; [])
    elif $n > 1 then two
    else from_object(first(fromstream($e[] | select(type == "array")))) end
elif split("\u0000") | length > 1 then
  out("bad"; "NUL bytes in trainer_state.json (a save cut short by a crash?)"; ""; ""; [])
elif $mode == "whole" or utf8bytelength < $window then whole
else
  # The head, closed before log_history, and the tail window from its first
  # top-level key line to the end, inside braces: two objects that hold every key
  # of the file but log_history, when the file is in HF'"'"'s layout.
  ($head | index("\n  \"log_history\": [\n")) as $li
  | (split("\n  \"")) as $parts
  | ($parts[1:] | map(split("\"")[0])) as $tkeys
  | (if $li == null then {err: "no log_history"} else ($head[:$li] | rtrimstr(",")) + "\n}" | parse end) as $h
  | (if ($parts | length) < 2 then {err: "no key"}
     else "{\n  \"" + ($parts[1:] | join("\n  \"")) | parse end) as $t
  | if $h.err or $t.err or ($head | startswith("{\n  \"") | not)
      or ($parts[0] | endswith("\n  ],") | not)
      or ($head[:$li] | top_keys | . + ["log_history"] + $tkeys | sorted_strictly | not)
      or $tkeys[0] > "stateful_callbacks" or ($h.v | has("global_step") | not)
    then out("more"; ""; ""; ""; [])
    else from_object($h.v + $t.v) end
end'

# Read a trainer_state.json.
# Arguments: FILE
# Sets (caller's locals): st_status (ok|missing|bad|fail), st_reason (for fail:
#   which of our tools failed, also in error), st_step, st_max (max_steps when a
#   whole number, else empty), st_where/st_type/st_value
#   (arrays: the run ids found, in order), st_wstep (the wandb_step stored beside
#   each, or empty).
wandb_resume::_read_state() {
  local file=$1 head out n i size nul grep_out whole=1
  local -a fields=()
  st_status=bad st_reason='' st_step='' st_max='' st_where=() st_type=() st_value=() st_wstep=()
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
    st_status=fail
    st_reason="jq not found on PATH: trainer_state.json cannot be read ($_WANDB_RESUME_JQ_INSTALL)"
    error=$st_reason
    return 0
  fi
  # The first 4 KiB through head (bash's read would skip NUL bytes, and so read on
  # through a file of zeros). Fewer characters than that: a small file, or NULs.
  read -r -d '' -N 4096 head < <(head -c 4096 -- "$file" 2>/dev/null)
  if [[ $head == $'\xef\xbb\xbf'* ]]; then
    st_reason="trainer_state.json starts with a UTF-8 byte order mark (Python's json refuses it)"
    return 0
  fi
  if ((${#head} < 4096)); then
    size=$(stat -L -c %s -- "$file" 2>/dev/null) || size=0
    if ((size > 4096)); then
      st_reason='NUL bytes in trainer_state.json (a save cut short by a crash?)'
      return 0
    fi
    wandb_resume::_check_utf8 "$file" || return 0
    wandb_resume::_jq_bounded -j -R -s --arg mode whole --arg head '' --argjson window 0 \
      "$_WANDB_RESUME_JQ_STATE" <"$file" || {
      st_status=fail st_reason="reading $file: $error" error=$st_reason
      return 0
    }
  else
    # The middle: NUL bytes anywhere (what a crash leaves in blocks never written,
    # even under a save record). grep is fast on it (memchr), but holds a whole
    # line: a file of very long lines is parsed whole.
    wandb_resume::_grep_bounded -q -a -F -f <(printf '\0') -- "$file"
    case $? in
      0)
        st_reason='NUL bytes in trainer_state.json (a save cut short by a crash?)'
        return 0
        ;;
      1) nul=0 ;;
      2) nul=unknown ;;
      *) # 3: grep failed
        st_status=fail st_reason="reading $file: $error" error=$st_reason
        return 0
        ;;
    esac
    out='more'
    if [[ $nul == 0 ]] && wandb_resume::_as_saved "$file"; then
      whole=0
      wandb_resume::_jq_bounded -j -R -s --arg mode window --arg head "$head" \
        --argjson window "$_WANDB_RESUME_WINDOW" "$_WANDB_RESUME_JQ_STATE" \
        < <(tail -c "$_WANDB_RESUME_WINDOW" -- "$file") || {
        st_status=fail st_reason="reading $file: $error" error=$st_reason
        return 0
      }
    fi
    if [[ $out == more* ]]; then
      # Not sure: a full parse.
      whole=1
      wandb_resume::_check_utf8 "$file" || return 0
      size=$(stat -L -c %s -- "$file" 2>/dev/null) || size=0
      if ((size <= _WANDB_RESUME_FULL_MAX)); then
        wandb_resume::_jq_bounded -j -R -s --arg mode whole --arg head '' --argjson window 0 \
          "$_WANDB_RESUME_JQ_STATE" <"$file"
      else
        # jq does not see NUL bytes (it skips them): look for them first.
        if [[ $nul == unknown ]] && ! cmp -s -- - "$file" < <(tr -d '\0' <"$file"); then
          st_reason='NUL bytes in trainer_state.json (a save cut short by a crash?)'
          return 0
        fi
        wandb_resume::_jq_bounded -j -n --stream --arg mode stream --arg head '' \
          --argjson window 0 "$_WANDB_RESUME_JQ_STATE" <"$file"
      fi || {
        st_status=fail st_reason="reading $file: $error" error=$st_reason
        return 0
      }
    fi
  fi
  mapfile -t -d $'\1' fields <<<"$out"
  st_status=${fields[0]:-bad}
  st_reason=${fields[1]:-}
  st_step=${fields[2]:-}
  st_max=${fields[3]:-}
  n=${fields[4]:-0}
  [[ $n =~ ^[0-9]+$ ]] || n=0
  for ((i = 0; i < n; i++)); do
    st_where+=("${fields[5 + 4 * i]:-}")
    st_type+=("${fields[6 + 4 * i]:-}")
    st_value+=("${fields[7 + 4 * i]:-}")
    st_wstep+=("${fields[8 + 4 * i]:-}")
  done
  [[ $st_status == ok || -n $st_reason ]] || st_reason='trainer_state.json could not be read'
  # What jq parsed whole, Python's json must accept too (the windows read a file as
  # json.dumps wrote it).
  if [[ $st_status == ok ]] && ((whole)) && ! wandb_resume::_check_python_json "$file"; then
    [[ $st_status == fail ]] || st_status=bad
    st_step='' st_max='' st_where=() st_type=() st_value=() st_wstep=()
  fi
}

# Is FILE valid UTF-8? The trainer reads it as UTF-8 and fails on anything else,
# while jq reads invalid bytes as U+FFFD. grep in the C.UTF-8 locale: a line holding
# bytes that are not UTF-8 does not match '.*' (where the locale is missing, grep
# matches every line and this check passes). Arguments: FILE
# Sets (on 1): st_reason, and st_status=fail with error when grep failed.
# Returns: 0 fine (or not known: a line too long for grep's memory), 1 not.
wandb_resume::_check_utf8() {
  local grep_out
  LC_ALL=C.UTF-8 wandb_resume::_grep_bounded -a -q -v -x '.*' -- "$1"
  case $? in
    0) st_reason='trainer_state.json is not valid UTF-8 (the trainer could not read it)' ;;
    3) st_status=fail st_reason="reading $1: $error" error=$st_reason ;;
    *) return 0 ;;
  esac
  return 1
}

# One line of JSON as Python's json reads it (PCRE): strings, numbers in JSON's
# grammar, true, false, null, NaN, Infinity, -Infinity, punctuation, JSON's white
# space. A JSON string never spans lines, so a file is this, line by line.
_WANDB_RESUME_PY_JSON_LINE='^(?:[ \t\r\[\]{}:,]|"(?:[^"\\]|\\.)*+"|true|false|null|NaN|-?Infinity|-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?(?![0-9.eE+-]))*+$'

# Would Python's json (the trainer's parser) also accept FILE, which jq accepted?
# jq 1.6 takes numbers Python refuses (01, 1., .5, +1, 1.e5) and the literals
# infinity and -nan; json.dumps writes none of them. grep -P; where grep has no -P,
# or a line is too long for its memory, the check passes (jq's answer stands).
# Arguments: FILE
# Sets (on 1): st_reason, and st_status=fail with error when grep failed.
# Returns: 0 fine (or not known), 1 not.
wandb_resume::_check_python_json() {
  local grep_out at
  LC_ALL=C wandb_resume::_grep_bounded -a -P -v -c -m 1 -- "$_WANDB_RESUME_PY_JSON_LINE" "$1"
  case $? in
    0)
      # Which line (a second grep, only now; cut keeps a long line out of memory).
      at=$(
        ulimit -v "$_WANDB_RESUME_MEM_KB" 2>/dev/null
        LC_ALL=C grep -a -P -v -n -m 1 -- "$_WANDB_RESUME_PY_JSON_LINE" "$1" 2>/dev/null | cut -c 1-20
      )
      at=${at%%:*}
      st_reason="trainer_state.json${at:+ line $at}: a number or literal that Python's json (the trainer's parser) refuses, though jq takes it (01, 1., .5, +1, infinity, -nan, ...)"
      ;;
    3)
      [[ $error == *' -P '* || $error == *[Pp]erl* || $error == *PCRE* ]] && error='' && return 0
      st_status=fail st_reason="reading $1: $error" error=$st_reason
      ;;
    *) return 0 ;;
  esac
  return 1
}

# Is FILE (CHECKPOINT/trainer_state.json) still exactly as the trainer saved it? True
# when CHECKPOINT/../.train-resume/saved/<name of CHECKPOINT> (written by
# train_resume's callback right after the save) holds the file's size, inode, mtime
# and ctime, as `stat -c '%s %i %.9Y %.9Z'` prints them. Arguments: FILE
wandb_resume::_as_saved() {
  local file=$1 dir rec line now
  [[ $file == */* ]] || return 1
  dir=${file%/*}
  rec=.train-resume/saved/$dir
  [[ $dir == */* ]] && rec=${dir%/*}/.train-resume/saved/${dir##*/}
  [[ -f $rec && -r $rec ]] || return 1
  IFS= read -r -N 200 line <"$rec" || [[ -n $line ]] || return 1
  now=$(stat -L -c '%s %i %.9Y %.9Z' -- "$file" 2>/dev/null) || return 1
  [[ ${line%$'\n'} == "$now" ]]
}
