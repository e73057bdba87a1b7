# shellcheck shell=bash
#
# state.bash: reading a trainer_state.json (global_step and the run ids stored
# in it) with jq, fast on files of hundreds of MB.
# Part of lib/wandb_resume.sh.

# How a trainer_state.json is read, and what it costs (make bench prints it):
# - under a save record that vouches for its checkpoint and still matches it
#   (saved.bash: _record_holds), not at all: the record holds what is read here.
# - up to 4 KiB: parsed whole (jq -R, fromjson inside try).
# - larger: grep looks for NUL bytes in the whole file first (memchr speed: ~20 ms for
#   173 MB). Then, when the file is still exactly as the trainer saved it, bash reads
#   the first 4 KiB (BOM, global_step) and one jq reads the last _WANDB_RESUME_WINDOW
#   bytes (the keys after log_history), and the middle is not parsed. "As saved":
#   the save record, written right after each save (saved.bash), holds the file's
#   size, inode, mtime and ctime (a save writes
#   the file with json.dumps, one valid object; any later write changes its ctime,
#   which no user can set back). The windows only answer when they are
#   sure to give what a full parse gives: HF's layout (indent 2, keys sorted, so no
#   duplicate), the head closed before log_history, the tail starting right after
#   log_history's `],` with its first key at or before stateful_callbacks.
# - otherwise (no record, a file changed since, another layout), a full parse: jq (up
#   to _WANDB_RESUME_FULL_MAX bytes, ~75 ms a MB); larger, in HF's layout, in pieces
#   by two jq at once (_read_split: ~1.2 s for 173 MB); else jq --stream (slow,
#   ~14 s for 173 MB, but small in memory). What jq parsed whole is also
#   checked for UTF-8 and for tokens Python's json refuses (grep, a few ms a MB).
# Every jq runs under `ulimit -v _WANDB_RESUME_MEM_KB`: a decision stays in tens of
# MB whatever the file. A jq (or grep) that fails, is killed or runs out of memory is
# an error of ours, never a damaged checkpoint.
# (Sizes are defaults: this part is sourced when first used, and a caller (the tests)
# may have set them before.)
: "${_WANDB_RESUME_WINDOW:=65536}"
: "${_WANDB_RESUME_FULL_MAX:=8388608}"

# The jq program that reads a trainer_state.json. $mode: "whole" (raw text of a
# small file), "window" (raw text of the file's tail, $head = its first bytes),
# "full" (jq -n: the values of the file) or "stream" (jq -n --stream: its events).
# It prints fields, each ended by the byte 0x01 (a byte no valid run id holds; 0x00
# and 0x01 in data become 0x02): status, detail, global_step, max_steps (a whole
# number >= 0, else empty), the number of run ids,
# then for each: where, type, value, wandb_step (stored beside the id: a whole number
# >= 0, else empty), wandb_project and wandb_entity (beside it: a string as it is, null
# empty, else JSON); and a last field "end" (so that a jq cut short
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
      | ["stateful_callbacks.\($k).args.wandb_run_id", .wandb_run_id, .wandb_step,
         .wandb_project, .wandb_entity]),
    (select(has("wandb_run_id") and .wandb_run_id != null)
      | ["wandb_run_id", .wandb_run_id, null, null, null]) ];
# A whole number >= 0 as text, else "".
def natural: if type == "number" and . >= 0 and floor == . then tostring else "" end;
# A string as it is, null as "", anything else as JSON.
def text: if type == "string" then . elif . == null then "" else tojson end;
def out($status; $detail; $step; $max; $ids):
  (([$status, $detail, $step, $max, ($ids | length | tostring)]
   + [$ids[] | .[0], (.[1] | type), (.[1] | if type == "string" then . else tojson end),
      (.[2] | natural), (.[3] | text), (.[4] | text)])[]
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
elif $mode == "split" then
  # The pieces _split_stream writes (see there): the head (an object), chunks
  # ["#", ...], ["##", ...] ... (each of 2 values or more), the end mark ["###"] (one
  # # more than the last chunk), and with $part "last" the tail (an object). Anything else
  # (a parse error, a value out of place, too many or too few) is "more": not sure.
  def keep: with_entries(select(.key | IN("global_step", "max_steps", "stateful_callbacks", "wandb_run_id")));
  $ARGS.named.part as $part
  | (try (reduce inputs as $x ({phase: 0, k: 1, bad: null};
      if .bad != null then .
      else ($x | type) as $t
        | if .phase == 0 then
            if $t == "object" then .h = ($x | keep) | .phase = 1 else .bad = "the head is a \($t)" end
          elif .phase == 1 then
            if $t != "array" or ($x | length) < 1 or ($x[0] | type) != "string"
              or ($x[0] | length) != .k or ($x[0] | test("^#*$") | not) then .bad = "piece \(.k) out of place"
            elif ($x | length) >= 2 then .k += 1
            elif .k >= 2 then .phase = 2
            else .bad = "no chunk" end
          elif .phase == 2 and $part == "last" and $t == "object" then .t = ($x | keep) | .phase = 3
          else .bad = "a value after the end" end
        end))
    catch {bad: tostring})
  | if .bad != null or .phase != (if $part == "last" then 3 else 2 end) then
      out("more"; .bad // "cut short"; ""; ""; [])
    elif $part == "first" then out("ok"; ""; ""; ""; [])
    else from_object(.h + .t) end
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

# Read a trainer_state.json. STAMP: its identity (stat -c '%s %i %.9Y %.9Z') just
# after the trainer saved it (wandb_resume::record_save), else the save record's.
# Arguments: FILE [STAMP]
# Sets (caller's locals): st_status (ok|missing|bad|fail|denied|vanished; denied:
#   we may not read it; vanished: it was deleted while it was read), st_reason (for
#   fail: which of our tools failed, also in error), st_step, st_max (max_steps when a
#   whole number, else empty), st_where/st_type/st_value
#   (arrays: the run ids found, in order), st_wstep (the wandb_step stored beside
#   each, or empty), st_project and st_entity (beside each; when the caller has
#   them: the save record holds them).
wandb_resume::_read_state() {
  local file=$1 stamp=${2:-} head='' out='' size=0 nul=0 grep_out='' text=unknown whole=1 streamed=0
  declare -p st_project >/dev/null 2>&1 || local -a st_project st_entity
  st_status=bad st_reason='' st_step='' st_max='' st_where=() st_type=() st_value=() st_wstep=()
  st_project=() st_entity=()
  wandb_resume::_state_readable "$file" || return 0
  # The first 4 KiB through head (bash's read would skip NUL bytes, and so read on
  # through a file of zeros). Fewer characters than that: a small file, or NULs.
  read -r -d '' -N 4096 head < <(head -c 4096 -- "$file" 2>/dev/null)
  if [[ $head == $'\xef\xbb\xbf'* ]]; then
    st_reason="trainer_state.json starts with a UTF-8 byte order mark (Python's json refuses it)"
    return 0
  fi
  if ((${#head} < 4096)); then
    wandb_resume::_state_small "$file" || return 0
  else
    wandb_resume::_state_nul "$file" || return 0
    out='more'
    if [[ $nul == 0 ]] && wandb_resume::_as_saved "$file" "$stamp"; then
      whole=0
      wandb_resume::_state_window "$file" || return 0
    fi
    # Not sure: a full parse.
    if [[ $out == more* ]]; then
      wandb_resume::_state_full "$file" || return 0
    fi
  fi
  wandb_resume::_state_fields "$file"
}

# The steps of _read_state. They share its locals (file's head, out, size, nul,
# text, whole, streamed) and set the st_* (and error) it sets; each returns 0 to go
# on, 1 when the state is told (the st_* say how).

# FILE is there, a regular file, ours to read, and jq is there to read it.
wandb_resume::_state_readable() {
  local file=$1
  if [[ ! -e $file && ! -L $file ]]; then
    st_status=missing
    st_reason='trainer_state.json missing (HF writes it last: the save was probably interrupted)'
    return 1
  fi
  if [[ ! -f $file ]]; then
    st_reason='trainer_state.json is not a regular file'
    [[ -L $file && ! -e $file ]] && st_reason='trainer_state.json is a symlink that leads nowhere'
    wandb_resume::_vanished "$file" && wandb_resume::_state_tool_failed "$file"
    return 1
  fi
  if [[ ! -r $file ]]; then
    st_status=denied st_reason="trainer_state.json: $(wandb_resume::_permission_reason "$file")"
    wandb_resume::_vanished "$file" && wandb_resume::_state_tool_failed "$file"
    return 1
  fi
  if ! command -v jq >/dev/null 2>&1; then
    st_status=fail
    st_reason="jq not found on PATH: trainer_state.json cannot be read ($_WANDB_RESUME_JQ_INSTALL)"
    error=$st_reason
    return 1
  fi
}

# A small file (or one with NUL bytes: fewer characters than 4 KiB were read),
# parsed whole. Arguments: FILE.
wandb_resume::_state_small() {
  local file=$1
  size=$(exec stat -L -c %s -- "$file" 2>/dev/null) || size=0
  if ((size > 4096)); then
    st_reason='NUL bytes in trainer_state.json (a save cut short by a crash?)'
    return 1
  fi
  wandb_resume::_check_text "$file"
  [[ $text == ok ]] || wandb_resume::_check_utf8 "$file" || return 1
  wandb_resume::_jq_bounded -j -R -s --arg mode whole --arg head '' --argjson window 0 \
    "$_WANDB_RESUME_JQ_STATE" 2>/dev/null <"$file" || {
    wandb_resume::_state_tool_failed "$file"
    return 1
  }
}

# The middle: NUL bytes anywhere (what a crash leaves in blocks never written, even
# under a save record). grep is fast on it (memchr), but holds a whole line: a file
# of very long lines is parsed whole. Arguments: FILE. Sets: nul (0, or unknown).
wandb_resume::_state_nul() {
  local grep_out
  wandb_resume::_grep_nul "$1"
  case $? in
    0)
      st_reason='NUL bytes in trainer_state.json (a save cut short by a crash?)'
      return 1
      ;;
    1) nul=0 ;;
    2) nul=unknown ;;
    *) # 3: grep failed
      wandb_resume::_state_tool_failed "$1"
      return 1
      ;;
  esac
}

# As saved: the head and the last _WANDB_RESUME_WINDOW bytes (the keys after
# log_history), the middle not parsed. Arguments: FILE. Sets: out (more: not sure).
wandb_resume::_state_window() {
  wandb_resume::_jq_bounded -j -R -s --arg mode window --arg head "$head" \
    --argjson window "$_WANDB_RESUME_WINDOW" "$_WANDB_RESUME_JQ_STATE" \
    < <(tail -c "$_WANDB_RESUME_WINDOW" -- "$1" 2>/dev/null) || {
    wandb_resume::_state_tool_failed "$1"
    return 1
  }
}

# The full parse: in pieces on both cores for a big file (_read_split), whole with
# jq up to _WANDB_RESUME_FULL_MAX, else streamed (_state_stream); UTF-8 checked
# before jq's answer counts. Arguments: FILE. Sets: out, size, text, whole.
wandb_resume::_state_full() {
  local file=$1
  whole=1
  size=$(exec stat -L -c %s -- "$file" 2>/dev/null) || size=0
  if ((size > _WANDB_RESUME_FULL_MAX)) && [[ $nul == 0 ]]; then
    # In pieces, on both cores (_read_split); when it is not sure, the slow way.
    if ! wandb_resume::_read_split "$file" && [[ $text == truncated ]]; then
      wandb_resume::_check_utf8 "$file" || return 1
      st_reason='not valid JSON (truncated?): it does not end with the } that closes it'
      return 1
    fi
  fi
  # UTF-8 is checked before jq's answer counts (Python's tokens after it), unless
  # one grep did both (_check_text, or _read_split's).
  [[ $text == unknown ]] && wandb_resume::_check_text "$file"
  [[ $text == ok ]] || wandb_resume::_check_utf8 "$file" || return 1
  if [[ $out != more* ]]; then
    return 0 # _read_split was sure
  elif ((size <= _WANDB_RESUME_FULL_MAX)); then
    wandb_resume::_jq_bounded -j -R -s --arg mode whole --arg head '' --argjson window 0 \
      "$_WANDB_RESUME_JQ_STATE" 2>/dev/null <"$file" && return 0
  else
    wandb_resume::_state_stream "$file"
    case $? in
      0) return 0 ;;
      1) return 1 ;;
    esac
  fi
  wandb_resume::_state_tool_failed "$file"
  return 1
}

# A file too big to parse whole, streamed by jq; jq does not see NUL bytes (it skips
# them): looked for first when not known. Arguments: FILE. Sets: out, streamed.
# Returns: 0 read, 1 told (st_*), 2 a tool of ours failed (error).
wandb_resume::_state_stream() {
  local file=$1
  if [[ $nul == unknown ]]; then
    cmp -s -- - "$file" < <(tr -d '\0' 2>/dev/null <"$file")
    case $? in
      0) ;;
      1)
        st_reason='NUL bytes in trainer_state.json (a save cut short by a crash?)'
        return 1
        ;;
      *)
        error='cmp failed'
        return 2
        ;;
    esac
  fi
  streamed=1
  wandb_resume::_jq_bounded -j -n --stream --arg mode stream --arg head '' \
    --argjson window 0 "$_WANDB_RESUME_JQ_STATE" 2>/dev/null <"$file" && return 0
  # jq 1.6's stream parser stops on an assertion on some damaged JSON (a value where
  # a key belongs): that is the file's fault, not ours.
  if [[ $out == *'stream_token: Assertion'* ]] && ! wandb_resume::_vanished "$file"; then
    st_reason="not valid JSON (truncated?): jq's stream parser gave up on it (${out//$'\n'/ })"
    st_reason=${st_reason:0:300}
    return 1
  fi
  return 2
}

# The st_* from jq's answer (out: fields ended by \1), then what jq parsed whole
# Python's json must accept too, and a streamed parse has no gap. Arguments: FILE.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: st_step, st_max
wandb_resume::_state_fields() {
  local file=$1 n i
  local -a fields=()
  mapfile -t -d $'\1' fields <<<"$out"
  st_status=${fields[0]:-bad}
  st_reason=${fields[1]:-}
  st_step=${fields[2]:-}
  st_max=${fields[3]:-}
  n=${fields[4]:-0}
  [[ $n =~ ^[0-9]+$ ]] || n=0
  for ((i = 0; i < n; i++)); do
    st_where+=("${fields[5 + 6 * i]:-}")
    st_type+=("${fields[6 + 6 * i]:-}")
    st_value+=("${fields[7 + 6 * i]:-}")
    st_wstep+=("${fields[8 + 6 * i]:-}")
    st_project+=("${fields[9 + 6 * i]:-}")
    st_entity+=("${fields[10 + 6 * i]:-}")
  done
  [[ $st_status == ok || -n $st_reason ]] || st_reason='trainer_state.json could not be read'
  # What jq parsed whole, Python's json must accept too (the windows read a file as
  # json.dumps wrote it).
  if [[ $st_status == ok ]] && ((whole)) && [[ $text != ok ]] && ! wandb_resume::_check_python_json "$file"; then
    [[ $st_status == @(fail|vanished) ]] || st_status=bad
    st_step='' st_max='' st_where=() st_type=() st_value=() st_wstep=() st_project=() st_entity=()
  fi
  if [[ $st_status == ok ]] && ((streamed)) && ! wandb_resume::_check_stream_gap "$file"; then
    st_status=bad st_step='' st_max='' st_where=() st_type=() st_value=() st_wstep=() st_project=() st_entity=()
  fi
}

# A tool of ours failed reading FILE (a trainer_state.json): our failure
# (st_status=fail, error says which), unless FILE is gone by now: deleted while it
# was read (st_status=vanished), which is no failure of ours. Arguments: FILE
wandb_resume::_state_tool_failed() {
  if wandb_resume::_vanished "$1"; then
    st_status=vanished st_reason='trainer_state.json vanished while it was checked (deleted meanwhile: rotated away by save_total_limit?)'
  else
    st_status=fail st_reason="reading $1: $error" error=$st_reason
  fi
}

# UTF-8 and Python's tokens in one grep (_WANDB_RESUME_PY_TEXT_LINE): when every
# line passes, _check_utf8 and _check_python_json have nothing to say. Anything else
# (a line that does not pass, a grep without -P or out of memory, one that failed)
# leaves it to them, which say what is wrong. Arguments: FILE. Sets: text=ok.
wandb_resume::_check_text() {
  local grep_out error
  LC_ALL=C wandb_resume::_grep_bounded -a -P -v -q -m 1 -- "$_WANDB_RESUME_PY_TEXT_LINE" "$1"
  (($? == 1)) && text=ok
  return 0
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
    3) wandb_resume::_state_tool_failed "$1" ;;
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
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: grep_out
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
      wandb_resume::_state_tool_failed "$1"
      ;;
    *) return 0 ;;
  esac
  return 1
}

# What jq 1.6's --stream parser lets through and a full parse refuses: a `[` right
# after a closing bracket (`[[1] [2]]`, `{"a": [1] [2]}`: no comma between). Never
# in JSON, outside strings; found line by line with the strings taken out (they end
# on their line: _check_python_json passed), and across lines. A file whose lines
# are too long for the memory of sed is not checked (jq's answer stands).
# Arguments: FILE. Sets (on 1): st_reason. Returns: 0 fine (or not known), 1 found.
wandb_resume::_check_stream_gap() {
  local at
  # shellcheck disable=SC2016 # awk's own variables
  at=$(
    ulimit -v "$_WANDB_RESUME_MEM_KB" 2>/dev/null
    LC_ALL=C sed -E 's/"([^"\\]|\\.)*"/""/g; s/[ \t\r]+//g' -- "$1" 2>/dev/null |
      LC_ALL=C awk '/[]}]\[/ || (p && /^\[/) { print NR; exit } /./ { p = /[]}]$/ }' 2>/dev/null
  )
  [[ $at == [1-9]*([0-9]) ]] || return 0
  st_reason="not valid JSON (truncated?): Expected separator between values at line $at (a [ right after a closing bracket)"
  return 1
}

# _check_python_json's line and _check_utf8 in one (for _read_split's grep, in the C
# locale): inside strings, only UTF-8 as Python's decoder takes it (no overlong
# forms, no surrogates, nothing above U+10FFFF), no control characters, and only
# the escapes JSON has; outside strings, ASCII tokens.
_WANDB_RESUME_PY_TEXT_LINE='^(?:[ \t\r\[\]{}:,]|"(?:[\x20\x21\x23-\x5b\x5d-\x7f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2})*+"|(?:true|false|null|NaN|-?Infinity|-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?)(?![A-Za-z0-9._+-]))*+$'

# A line whose strings all end on it (for _read_split, in the C locale).
_WANDB_RESUME_STRINGS_LINE='^(?:[^"]|"(?:[^"\\]|\\.)*+")*+$'

# The pieces of a large trainer_state.json (_read_split): about this many bytes each
# (jq holds one at a time: ~7 times its size), and how far past that a line that
# ends a log_history entry is looked for.
: "${_WANDB_RESUME_CHUNK:=2097152}"
: "${_WANDB_RESUME_REACH:=262144}"

# A large trainer_state.json parsed whole, in bounded memory and on two cores: the
# file in HF's layout (indent 2: log_history's entries are the lines from
# `  "log_history": [` to `  ],`, one ending `    },` before each next one) is cut,
# at some of those entry ends, into JSON texts that two jq read one at a time, each
# its half: (head) the file up to log_history's `[`, closed with `]}`; (chunks)
# `["#",` E1, ..., En `]`, then `["##"` `,` En+1 ... `]` and so on, every cut written
# before the comma that ends an entry; (end mark) `["###"]`, one `#` more than the
# last chunk; the second jq then (tail) `{"":0` and the rest of the file after
# log_history's `]`. Between the head and the tail, log_history's text is squeezed
# (`tr -s`, one process per half) to words: every run of spaces and newlines made
# one space, and every run of [A-Za-z0-9._+-] (a number's or a literal's bytes, or
# a string's) made one `0`: jq reads a third of the bytes and builds no long key
# (make bench: ~2x faster than reading them whole). A file that holds a backslash
# (an escape, which the squeeze would break), or a line the grep does not pass, is
# squeezed to spaces only, and its pieces are read again that way.
#
# Why a jq that reads exactly that sequence (the "split" program) gives the answer
# of a full parse, whatever the file holds:
# - Every cut writes `]` then `[` (or `}` then `[`, `]` then `{`). Inside a JSON
#   value a closing bracket is followed by `,` or another closing bracket, never by
#   an opening one: so where jq reads without error, every cut ends a value, and
#   each piece is one value or more. The program takes one value per piece, in order
#   (the marks #, ##, ... and the end mark, the head and tail objects where they
#   belong) and nothing else: each piece is exactly one value.
# - The head `P[]}` one object: its `[]` is a member value of the top-level object.
#   Each chunk `["#..."` + T + `]` of 2 values or more: T is `,` (or, in the first,
#   the start of) a non-empty list of values. The tail `{"":0` + Y one object: Y is
#   `}` or `, members }`. Put back together, P `[` list, list, ... `]` Y: one object,
#   whose keys outside log_history are the head's, then the tail's (a later one wins,
#   as in a full parse).
# - The file is read through one descriptor (the same file throughout), and each
#   writer must end well (a writer cut short could end on a value of the file's own
#   making); the file's size, inode and times must not change meanwhile.
# - Squeezed to spaces, tr -s changes only white space and the text inside strings
#   (of log_history entries, never read) when no string spans lines (what JSON never
#   does, and tr would mend): every line passed the grep of
#   _WANDB_RESUME_PY_TEXT_LINE, or else that of _WANDB_RESUME_STRINGS_LINE, or the
#   answer is not taken.
# - Squeezed to words, only with the grep passed on every line: each line is then a
#   sequence of tokens (strings without a backslash, ending on their line; numbers and
#   literals, each followed by none of [A-Za-z0-9._+-]; punctuation; white space), so
#   each string stays one string (its quotes kept), each number or literal becomes
#   exactly one `0` (never two merged into one), and the punctuation stays: the
#   squeezed text is JSON exactly where the text is (the grep has checked every
#   token as Python's json reads it).
# jq's depth limit (256) counts from log_history's entries in a chunk, one less
# than in a whole parse (Python's json goes deeper than both).
# Arguments: FILE. Reads: head (the file's first 4 KiB).
# Sets: out (the fields of the "last" jq, when sure), text (ok: the grep passed; bad:
#   a line did not; truncated: the file does not end with `}`; else unknown).
# Returns: 0 sure, 1 not (another layout, damage, a tool that failed, the file changed:
#   the caller parses the file the old way, which says what went wrong).
wandb_resume::_read_split() {
  local file=$1 open_end=0 stamp='' size=0 close=0 mid=0 squeeze=words
  text=unknown
  wandb_resume::_split_bounds "$file" || return 1
  wandb_resume::_split_middle "$file"
  # An escape (a backslash anywhere) would not survive the words' squeeze.
  if (
    ulimit -v "$_WANDB_RESUME_MEM_KB" 2>/dev/null
    exec grep -q -a -F -e "\\" -- "$file"
  ) 2>/dev/null; then
    squeeze=spaces
  fi
  wandb_resume::_split_pass "$file" && return 0
  # Squeezed to words, an answer without the grep's (a line it did not pass) is
  # none: the pieces again, squeezed to spaces (the grep passing, words are sure).
  [[ $squeeze == words && $text != ok ]] || return 1
  squeeze=spaces text=unknown
  wandb_resume::_split_pass "$file"
}

# One pass of _read_split: the two jq (and the grep) at once, log_history squeezed
# as SQUEEZE says. Reads (_read_split's): open_end, close, mid, stamp, squeeze.
# Sets: out, text. Returns: 0 sure, 1 not.
wandb_resume::_split_pass() {
  local file=$1 res
  res=$(
    ulimit -v "$_WANDB_RESUME_MEM_KB" 2>/dev/null
    exec {fd}<"$file" || exit 1
    src=/dev/fd/$fd from=$open_end a='' b=''
    if ((mid)); then
      exec {fa}< <(wandb_resume::_split_jq first "$open_end" "$mid" "$open_end" <"$src")
      from=$mid
    fi
    exec {fb}< <(wandb_resume::_split_jq last "$from" $((close + 1)) "$open_end" <"$src")
    LC_ALL=C grep -a -P -v -q -m 1 -- "$_WANDB_RESUME_PY_TEXT_LINE" "$src" >/dev/null 2>&1
    printf '%s\4' "$?"
    ((mid)) && IFS= read -r -d '' a <&"$fa"
    IFS= read -r -d '' b <&"$fb"
    # (the second jq's fields last: they may hold any byte but NUL)
    printf '%s\4%s\4%s' "$a" "$(exec stat -L -c '%s %i %.9Y %.9Z' -- "$file" 2>/dev/null)" "$b"
  )
  case ${res%%$'\4'*} in
    0) text=bad ;;
    1) text=ok ;;
  esac
  res=${res#*$'\4'}
  ((mid == 0)) || [[ ${res%%$'\4'*} == ok$'\1'*$'\3'"0 0" ]] || return 1
  res=${res#*$'\4'}
  [[ ${res%%$'\4'*} == "$stamp" ]] || return 1
  res=${res#*$'\4'}
  [[ $res == @(ok|bad)$'\1'*$'end\1\3'"0 0" ]] || return 1
  # A line the grep did not pass: squeezed to words, no answer; to spaces, the pieces'
  # answer stands only if no string spans lines (tr -s would have made one of a
  # string cut by a newline, which is no JSON).
  if [[ $text != ok ]]; then
    [[ $squeeze == spaces ]] || return 1
    LC_ALL=C wandb_resume::_grep_bounded -a -P -v -q -m 1 -- "$_WANDB_RESUME_STRINGS_LINE" "$file"
    (($? == 1)) || return 1
  fi
  out=${res%$'\3'*}
}

# Where log_history's entries begin (open_end: after its `[` line in the head) and
# where it closes (close: its `  ]` line in the last bytes), and the file's identity
# now (_read_split's step). Arguments: FILE. Sets: open_end, close, stamp, size, text
# (truncated: it does not end with `}`). Returns: 0, 1 another layout.
wandb_resume::_split_bounds() {
  local file=$1 prefix win rest
  [[ $head == *$'\n  "log_history": [\n'* ]] || return 1
  prefix=${head%%$'\n  "log_history": [\n'*}
  open_end=$((${#prefix} + 19))
  stamp=$(exec stat -L -c '%s %i %.9Y %.9Z' -- "$file" 2>/dev/null) || return 1
  size=${stamp%% *}
  IFS= read -r -d '' win < <(tail -c "$_WANDB_RESUME_WINDOW" -- "$file" 2>/dev/null)
  # (bash matches a pattern with a leading * in time that grows with the square of
  # the text's length: only trailing *, and single characters, on 64 KiB)
  rest=$win
  while [[ ${rest: -1} == [$' \t\r\n'] ]]; do rest=${rest%?}; done
  if [[ ${rest: -1} != '}' ]]; then
    text=truncated
    return 1
  fi
  # log_history's `]`: the first line `  ]` or `  ],` in the last bytes.
  prefix=${win%%$'\n  ]'*}
  rest=${win:${#prefix}+4}
  [[ ${#prefix} != "${#win}" && (${rest:0:1} == $'\n' || ${rest:0:2} == ,$'\n') ]] || return 1
  close=$((size - ${#rest} - 1))
  ((close > open_end)) || return 1
}

# Two halves, cut at an entry's end near the middle, for a log_history long enough
# (_read_split's step). Arguments: FILE. Reads: open_end, close. Sets: mid (0: one
# piece).
wandb_resume::_split_middle() {
  local file=$1 off line
  local -a found=()
  if ((close - open_end > 4 * (_WANDB_RESUME_CHUNK + _WANDB_RESUME_REACH))); then
    off=$((open_end + (close - open_end) / 2))
    mapfile -t found < <(tail -c +$((off + 1)) -- "$file" 2>/dev/null | grep -a -m 2 -b -x -F -e '    },' 2>/dev/null)
    for line in "${found[@]}"; do
      line=${line%%:*}
      if [[ $line == [1-9]*([0-9]) ]] && ((${#line} < 19)); then
        mid=$((off + line + 5))
        # (not past the middle's share of log_history: another layout)
        ((mid < close - 2 * (_WANDB_RESUME_CHUNK + _WANDB_RESUME_REACH))) || mid=0
        break
      fi
    done
  fi
  return 0
}

# One writer of _read_split and its jq: prints jq's fields, then \3 and the exit
# statuses of the writer and of jq. stdin: the file, at its start.
# Arguments: PART (first|last) FROM TO OPEN_END
wandb_resume::_split_jq() {
  wandb_resume::_split_stream "$@" 2>/dev/null |
    jq -j -n --arg mode split --arg part "$1" --arg head '' --argjson window 0 \
      "$_WANDB_RESUME_JQ_STATE" 2>/dev/null
  printf '\3%s %s' "${PIPESTATUS[0]}" "${PIPESTATUS[1]}"
}

# Write the pieces of _read_split for FILE's bytes from FROM to TO (stdin: FILE, at
# its start): the head, then the chunks from FROM (OPEN_END, just after log_history's
# `[`, or a comma that ends an entry) to TO (such a comma, for PART first; one past
# log_history's `]` for PART last), the end mark, and for PART last the tail.
# Chunk k is marked by a string of k `#` (a byte the squeeze keeps). log_history's
# text is squeezed as _read_split's squeeze says: spaces (runs of spaces and newlines
# made one space) or words (also every run of the bytes of numbers and literals,
# [A-Za-z0-9._+-], made one 0: strings keep their quotes, values become 0).
# Arguments: PART FROM TO OPEN_END. Reads: squeeze. Returns: 0, or non-zero when it
#   could not write them all (a read that failed, no entry's end where one was
#   looked for).
wandb_resume::_split_stream() {
  local part=$1 from=$2 to=$3 open_end=$4 from_set=' \n' to_set=' '
  local - # (it runs in a subshell of _read_split's; and should it not, the caller's options stay)
  set -o pipefail
  local chunk=$_WANDB_RESUME_CHUNK
  # (squeezed to words, a chunk is a quarter of its bytes or less: 4 times as long)
  [[ $squeeze == words ]] && from_set=$'\n A-Za-z0-9._+-' to_set='  0' chunk=$((chunk * 4))
  head -c "$open_end" || return
  printf ']}\n["#"'
  if ((from == open_end)); then
    printf ','
  else
    dd iflag=skip_bytes skip=$((from - open_end)) count=0 status=none || return
  fi
  {
    local pos=$from k='#' line limit
    # (the line that ends the look may end 7 bytes past REACH: never past TO)
    while ((to - pos > chunk + _WANDB_RESUME_REACH + 8)); do
      head -c "$chunk" || exit
      pos=$((pos + chunk)) limit=$((pos + _WANDB_RESUME_REACH))
      # On to the next line `    },` (the first line read is the rest of the one
      # head stopped in: never taken).
      IFS= read -r line || exit
      while :; do
        printf '%s\n' "$line"
        pos=$((pos + ${#line} + 1))
        ((pos < limit)) || exit 1
        IFS= read -r line || exit
        if [[ $line == '    },' ]]; then
          k+='#' pos=$((pos + 7))
          printf '    }]\n["%s",\n' "$k"
          break
        fi
      done
    done
    head -c $((to - pos)) || exit
    [[ $part == first ]] && printf ']'
    printf '\n["%s#"]\n' "$k"
  } | tr -s "$from_set" "$to_set" || return
  [[ $part == first ]] && return 0
  printf '{"":0'
  cat
}
