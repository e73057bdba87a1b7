# shellcheck shell=bash
#
# config.bash: resume_from_checkpoint and output_dir from the trainer's YAML or
# JSON config file.
# Part of lib/wandb_resume.sh.

# Read resume_from_checkpoint and output_dir from a trainer config (YAML or JSON,
# top-level keys only), as the trainer would see them: YAML values as PyYAML's
# safe_load (what TRL and HfArgumentParser use) resolves them, so an unquoted
# true/false/yes/no/on/off (lower, Capitalized or UPPER case, YAML 1.1) is a
# boolean and a quoted one a string; a leading ~ or ~user expanded as
# os.path.expanduser (TrainingArguments does so for output_dir; for
# resume_from_checkpoint we do too, as the hand-off passes the absolute path).
# Arguments: FILE. Sets: cfg_resume ("" when absent, null or false; `latest` when
# true; else the path), cfg_output_dir ("" when absent or null), error.
# Returns 1 when the file cannot be read.
wandb_resume::_read_config() {
  local file=$1 line=''
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
    wandb_resume::_read_config_json "$file"
    return
  fi
  wandb_resume::_read_config_yaml "$file"
}

# A JSON config (TrainingArguments saved as JSON): its resume_from_checkpoint and
# output_dir, read by jq. Arguments: FILE. Sets: cfg_resume, cfg_output_dir; error.
# Returns: 0, 1 it cannot be read (error).
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: error
wandb_resume::_read_config_json() {
  local file=$1 out value
  local -a fields=()
  if ! command -v jq >/dev/null 2>&1; then
    error="config file $file: jq not found on PATH (needed to read a JSON config): $_WANDB_RESUME_JQ_INSTALL"
    return 1
  fi
  # shellcheck disable=SC2016 # jq program
  out=$(jq -j 'if type != "object" then error("not a JSON object") else . end
    | (.resume_from_checkpoint, .output_dir)
    | (if . == null or . == false then "\u0002" elif . == true then "\u0003"
       elif type == "string" then . else tojson end), "\u0001"' \
    "$file" 2>&1) || {
    error="config file $file is not usable JSON: ${out//$'\n'/ }"
    return 1
  }
  mapfile -t -d $'\1' fields <<<"$out"
  case ${fields[0]:-} in
    $'\2') ;;
    $'\3') cfg_resume=latest ;;
    *) wandb_resume::_expand_user "${fields[0]:-}" && cfg_resume=$value ;;
  esac
  if [[ ${fields[1]:-} != $'\2' ]]; then
    wandb_resume::_expand_user "${fields[1]:-}" && cfg_output_dir=$value
  fi
  return 0
}

# A YAML config (TRL's and the example scripts' --config): its top-level
# resume_from_checkpoint: and output_dir: lines, plain or quoted scalars (YAML's
# booleans and nulls as the trainer takes them). Arguments: FILE. Sets: cfg_resume,
# cfg_output_dir. Returns: 0.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: cfg_resume, cfg_output_dir
wandb_resume::_read_config_yaml() {
  local file=$1 line key value quoted
  while IFS='' read -r line || [[ -n $line ]]; do
    [[ $line =~ ^(resume_from_checkpoint|output_dir):([[:space:]].*)?$ ]] || continue
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    value=${value#"${value%%[![:space:]]*}"}
    quoted=0
    if [[ $value =~ ^\"([^\"]*)\" || $value =~ ^\'([^\']*)\' ]]; then
      value=${BASH_REMATCH[1]} quoted=1
    else
      value=${value%%[[:space:]]#*}
      value=${value%"${value##*[![:space:]]}"}
      [[ $value == @(null|Null|NULL|~) ]] && value=''
    fi
    if ((! quoted)) && [[ $value == @(false|False|FALSE|no|No|NO|off|Off|OFF) ]]; then
      value=''
    elif ((! quoted)) && [[ $value == @(true|True|TRUE|yes|Yes|YES|on|On|ON) ]]; then
      [[ $key == resume_from_checkpoint ]] && value=latest
    fi
    [[ $value == latest && $key == resume_from_checkpoint ]] || wandb_resume::_expand_user "$value"
    if [[ $key == resume_from_checkpoint ]]; then
      cfg_resume=$value
    else
      cfg_output_dir=$value
    fi
  done <"$file"
  return 0
}

# Expand a leading ~ or ~user of PATH as Python's os.path.expanduser does: ~ is
# $HOME (or the passwd entry of our uid when HOME is unset), ~user that user's home
# directory; an unknown user, or a ~ elsewhere, is left as it is. Nothing is
# evaluated. Arguments: PATH. Sets: value. Returns 0.
wandb_resume::_expand_user() {
  local path=$1 user home='' rest
  value=$path
  [[ $path == '~'* ]] || return 0
  user=${path%%/*}
  user=${user#\~}
  rest=${path#\~"$user"}
  if [[ -z $user ]]; then
    if [[ -n ${HOME+set} ]]; then
      home=$HOME
    else
      home=$(getent passwd "$(id -u)" 2>/dev/null | cut -d: -f6) || home=''
      [[ -n $home ]] || return 0
    fi
  else
    home=$(getent passwd -- "$user" 2>/dev/null | cut -d: -f6) || home=''
    [[ -n $home ]] || return 0
  fi
  value=${home%%+(/)}$rest
  [[ -n $value ]] || value=/
  return 0
}
