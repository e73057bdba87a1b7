# shellcheck shell=bash
# shellcheck disable=SC2034 # a part: the decision's state is shared through the locals of its caller (decide.bash), which shellcheck cannot follow across files
#
# config.bash: resume_from_checkpoint and output_dir from the trainer's YAML or
# JSON config file.
# Part of lib/wandb_resume.sh.

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
