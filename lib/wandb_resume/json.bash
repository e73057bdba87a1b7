# shellcheck shell=bash
#
# json.bash: the --explain --json output, printed by bash (no process for it).
# Part of lib/wandb_resume.sh.

# Set `json` (the caller's local) to STRING as a JSON string literal; with
# --null, an empty STRING is null. Valid UTF-8 is kept as it is; a byte that is not
# part of valid UTF-8 (a path is bytes) becomes \udcXX, the lone surrogate escape
# Python's os.fsdecode gives it and json.dumps writes: os.fsencode(json.loads(...))
# gives the bytes back. Runs in the C locale (guest.bash): ${str:i:1} is a byte.
wandb_resume::_json_string() {
  local str
  if [[ $1 == --null ]]; then
    shift
    [[ -z $1 ]] && json=null && return 0
  fi
  str=${1//\\/\\\\}
  str=${str//\"/\\\"}
  # Control bytes and bytes >= 0x80 (neither is [:print:] in the C locale).
  [[ $str == *[![:print:]]* ]] && wandb_resume::_json_escape_bytes
  json=\"$str\"
}

# Escape the control bytes of `str` (the caller's local), and each byte that is not
# part of a valid UTF-8 sequence (as Python's UTF-8 decoder judges it: no overlong
# forms, no surrogates, nothing above U+10FFFF) as \udcXX.
wandb_resume::_json_escape_bytes() {
  local out='' c n lo hi k j b len=${#str} i=0
  while ((i < len)); do
    c=${str:i:1}
    printf -v n %d "'$c"
    if ((n >= 0x20 && n < 0x80)); then
      out+=$c i=$((i + 1))
      continue
    fi
    case $c in
      $'\n') out+='\n' i=$((i + 1)) && continue ;;
      $'\t') out+='\t' i=$((i + 1)) && continue ;;
      $'\r') out+='\r' i=$((i + 1)) && continue ;;
    esac
    # The length of the sequence a lead byte starts, and the range of its 2nd byte.
    k=0 lo=0x80 hi=0xbf
    if ((n >= 0xc2 && n <= 0xdf)); then
      k=2
    elif ((n >= 0xe0 && n <= 0xef)); then
      k=3
      ((n == 0xe0)) && lo=0xa0
      ((n == 0xed)) && hi=0x9f
    elif ((n >= 0xf0 && n <= 0xf4)); then
      k=4
      ((n == 0xf0)) && lo=0x90
      ((n == 0xf4)) && hi=0x8f
    fi
    for ((j = 1; j < k; j++)); do
      printf -v b %d "'${str:i+j:1}"
      ((b >= lo && b <= hi)) || break
      lo=0x80 hi=0xbf
    done
    if ((k > 0 && j == k)); then
      out+=${str:i:k} i=$((i + k))
    elif ((n < 0x20)); then
      printf -v c '\\u%04x' "$n" && out+=$c i=$((i + 1))
    else
      printf -v c '\\udc%02x' "$n" && out+=$c i=$((i + 1))
    fi
  done
  str=$out
}

# Print the decision as the JSON object of the --explain --json contract (in bash:
# no process for it). Reads the caller's mode, ckpt, run_id, run_id_source,
# wandb_resume, resume_from, skipped and warnings.
# shellcheck disable=SC2154 # shared through dynamic scope, which shellcheck does not follow; read here, a caller's: mode, ckpt, run_id, run_id_source, wandb_resume, resume_from, skipped, warnings
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
