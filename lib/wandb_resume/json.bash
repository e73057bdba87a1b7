# shellcheck shell=bash
# shellcheck disable=SC2154 # a part: the decision's state is shared through the locals of its caller (decide.bash), which shellcheck cannot follow across files
#
# json.bash: the --explain --json output, printed by bash (no process for it).
# Part of lib/wandb_resume.sh.

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
# wandb_resume, resume_from, skipped and warnings.
wandb_resume::_print_json() {
  local json i sep='' out="{\"mode\": \"$mode\""
  wandb_resume::_json_string --null "$ckpt"
  out+=", \"checkpoint\": $json"
  wandb_resume::_json_string --null "$run_id"
  out+=", \"run_id\": $json"
  wandb_resume::_json_string --null "$run_id_source"
  out+=", \"run_id_source\": $json"
  wandb_resume::_json_string --null "$wandb_resume"
  out+=", \"wandb_resume\": $json"
  wandb_resume::_json_string --null "$resume_from"
  out+=", \"wandb_resume_from\": $json, \"skipped\": ["
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
