# shellcheck shell=bash
#
# options.bash: the options of bin/train-resume and wandb_resume::configure.
# Part of lib/wandb_resume.sh.

# What --help, --version and --lib print (stdout). Arguments: OPTION
wandb_resume::_print_about() {
  case $1 in
    -h | --help) wandb_resume::usage ;;
    --version) printf 'train-resume %s\n' "$_WANDB_RESUME_VERSION" ;;
    # The library file this decision runs (after any install): for job scripts,
    # source "$(train-resume --lib)".
    --lib) printf '%s\n' "$_WANDB_RESUME_LIB.sh" ;;
  esac
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

# Step 0: read the options and check them, that jq is there, and (to run one)
# that COMMAND can be found.
# Arguments: CALLER (library|cli) OPTIONS [--] [COMMAND...]
# Sets (the decision's locals, see decide.bash): output_dir, checkpoint, config,
#   wandb_dir, resume_mode, sources, source_list, rewind, forget_failed, no_lock,
#   allow_weights_only,
#   explain, json, quiet, command;
#   stop=1 after --help, --version or --lib (printed here).
# Returns: 0; 2 a usage error (no arguments at all: the usage lines); 1 jq is
#   missing; 127 COMMAND not found, 126 not executable (each logged).
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: config, wandb_dir, rewind, forget_failed, no_lock, allow_weights_only, json, quiet, stop
wandb_resume::_parse_options() {
  local caller=$1 value='' take=1 hint='' usage
  shift
  if [[ $caller == cli ]] && (($# == 0)); then
    usage=$(wandb_resume::usage)
    printf '%s\n\n%s\n' "${usage%%$'\n\n'*}" "Try 'train-resume --help' for the options." >&2
    return 2
  fi
  while (($#)); do
    take=1
    case $1 in
      -o | --output-dir | --output-dir=*)
        wandb_resume::_optarg --output-dir "$@" && output_dir=$value
        [[ -n $error || -n $output_dir ]] || error='--output-dir needs a non-empty value'
        ;;
      -c | --checkpoint | --checkpoint=*)
        wandb_resume::_optarg --checkpoint "$@" && checkpoint=$value
        [[ -n $error || -n $checkpoint ]] || error='--checkpoint needs a non-empty value'
        ;;
      --config | --config=*) wandb_resume::_optarg --config "$@" && config=$value ;;
      --wandb-dir | --wandb-dir=*) wandb_resume::_optarg --wandb-dir "$@" && wandb_dir=$value ;;
      --resume-mode | --resume-mode=*) wandb_resume::_optarg --resume-mode "$@" && resume_mode=$value ;;
      --sources | --sources=*) wandb_resume::_optarg --sources "$@" && sources=$value ;;
      --wandb-rewind) rewind=1 ;;
      --forget-failed) forget_failed=1 ;;
      --no-lock) no_lock=1 ;;
      --allow-weights-only) allow_weights_only=1 ;;
      -n | --explain) explain=1 ;;
      --json) json=1 explain=1 ;;
      -q | --quiet) quiet=1 ;;
      # (one label each: tests/cli.bats reads the accepted options from the labels)
      -h | --help) ;&
      --version) ;&
      --lib)
        wandb_resume::_print_about "$1"
        stop=1
        return 0
        ;;
      --)
        shift
        break
        ;;
      -?*)
        wandb_resume::_did_you_mean "$1"
        error="unknown option: $1$hint"
        ;;
      *) break ;;
    esac
    [[ -z $error ]] || break
    shift "$take"
  done
  command=("$@")
  wandb_resume::_check_options "$@"
}

# After the options: what they say together, jq, and COMMAND. Arguments: COMMAND...
# Reads: caller, explain, resume_mode, sources; error. Sets: source_list, error.
# Returns: 0, 1 no jq, 2 usage error, 126/127 COMMAND cannot be run (logged).
wandb_resume::_check_options() {
  local src status
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
        [[ $src == @(checkpoint-wandb|trainer-state|wandb-dir|env) ]] ||
          error="unknown run id source: $src (known: checkpoint-wandb, trainer-state, wandb-dir, env)"
      done
    fi
  fi
  if [[ -n $error ]]; then
    wandb_resume::_log error error "$error"
    printf '%s\n' "Try 'train-resume --help'." >&2
    return 2
  fi
  # A job that starts without jq would fail on its first restart, when there are
  # checkpoints to check: it does not start at all.
  if ! command -v jq >/dev/null 2>&1; then
    wandb_resume::_log error error "jq not found on PATH: every checkpoint's trainer_state.json is read with it, so a job started without it could not be resumed. Nothing was run: $_WANDB_RESUME_JQ_INSTALL"
    return 1
  fi
  # COMMAND as the shell would find it (exit 127, as a shell's), before anything is
  # decided or locked.
  if [[ $caller == cli ]] && ((! explain)) && ! wandb_resume::_runnable "${command[0]}"; then
    wandb_resume::_log error error "$error"
    return "$status"
  fi
}

# The long options of wandb_resume::_parse_options (tests/cli.bats checks this list
# against its case labels).
_WANDB_RESUME_OPTIONS=(--output-dir --checkpoint --config --wandb-dir --resume-mode --sources
  --wandb-rewind --forget-failed --no-lock --allow-weights-only --explain --json --quiet --help
  --version --lib)

# Set `hint` (the caller's local) to " (did you mean --X?)" for an unknown option
# OPT close to ours: HF's spelling (--output_dir), another case, a prefix (--wandb:
# each option it begins), a typo of one or two letters, or an HF name for the same
# thing (--resume_from_checkpoint); else "". Arguments: OPT
wandb_resume::_did_you_mean() {
  local opt=${1%%=*} known norm best='' d min=3
  hint=''
  norm=${opt,,}
  norm=--${norm##+(-)}
  norm=${norm//_/-}
  case $norm in
    --resume-from-checkpoint | --resume-from | --resume) best=--checkpoint ;;
    --dry-run) best=--explain ;;
    --out | --outdir | --out-dir) best=--output-dir ;;
  esac
  if [[ -z $best ]]; then
    for known in "${_WANDB_RESUME_OPTIONS[@]}"; do
      [[ $norm == "$known" ]] && best=$known && break
      [[ (${#norm} -ge 5 && $known == "$norm"*) || $norm == "$known"-* ]] && best+=${best:+ or }$known
    done
  fi
  if [[ -z $best ]]; then
    for known in "${_WANDB_RESUME_OPTIONS[@]}"; do
      wandb_resume::_distance "$norm" "$known"
      ((d < min)) && min=$d best=$known
    done
  fi
  [[ -z $best ]] || hint=" (did you mean $best?)"
}

# Set `d` (the caller's local) to the edit distance between A and B (Levenshtein,
# for option names: a few dozen letters). Arguments: A B
wandb_resume::_distance() {
  local a=$1 b=$2 i j cost
  local -a prev=() cur=()
  for ((j = 0; j <= ${#b}; j++)); do prev[j]=$j; done
  for ((i = 1; i <= ${#a}; i++)); do
    cur=("$i")
    for ((j = 1; j <= ${#b}; j++)); do
      cost=1
      [[ ${a:i-1:1} == "${b:j-1:1}" ]] && cost=0
      cur[j]=$((prev[j] + 1))
      ((cur[j - 1] + 1 < cur[j])) && cur[j]=$((cur[j - 1] + 1))
      ((prev[j - 1] + cost < cur[j])) && cur[j]=$((prev[j - 1] + cost))
    done
    prev=("${cur[@]}")
  done
  d=${prev[${#b}]}
}

# Whether NAME can be run as COMMAND (exec finds it as the shell would: a path when
# it holds a /, else on PATH). Arguments: NAME
# Sets: error and status (the shell's exit status for it: 127 not found, 126 not
# executable) when it cannot. Returns: 0 runnable, 1 not.
wandb_resume::_runnable() {
  local name=$1 found
  if [[ $name == */* ]]; then
    found=$name
  else
    found=$(type -P -- "$name") || found=''
  fi
  if [[ -z $found || ! -e $found ]]; then
    error="command not found: $name (nothing was run)" status=127
  elif [[ -d $found || ! -x $found ]]; then
    error="cannot run $found: not an executable file (nothing was run)" status=126
  else
    return 0
  fi
  return 1
}
