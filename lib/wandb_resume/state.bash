# shellcheck shell=bash
# shellcheck disable=SC2034 # a part: the decision's state is shared through the locals of its caller (decide.bash), which shellcheck cannot follow across files
#
# state.bash: reading a trainer_state.json (global_step and the run ids stored
# in it) with jq, fast on files of hundreds of MB.
# Part of lib/wandb_resume.sh.

# trainer_state.json files under 4 KiB are parsed whole; larger ones are read from
# their first 4 KiB (global_step) and a window of this many bytes at the tail (the
# keys after log_history), and parsed whole only when those are not conclusive.
_WANDB_RESUME_WINDOW=65536

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
