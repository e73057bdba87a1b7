# shellcheck shell=bash
# shellcheck disable=SC2034 # a part: the decision's state is shared through the locals of its caller (decide.bash), which shellcheck cannot follow across files
#
# options.bash: the options of bin/train-resume and wandb_resume::configure.
# Part of lib/wandb_resume.sh.

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

# Step 0: read the options and check them.
# Arguments: CALLER (library|cli) OPTIONS [--] [COMMAND...]
# Sets (the decision's locals, see decide.bash): output_dir, checkpoint, config,
#   wandb_dir, resume_mode, sources, source_list, rewind, forget_failed, no_lock,
#   allow_weights_only,
#   explain, json, quiet, command;
#   stop=1 after --help, --version or --lib (printed here).
# Returns: 0, or 2 on a usage error (logged).
wandb_resume::_parse_options() {
  local caller=$1 value take src
  shift
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
      --wandb-rewind) rewind=1 && shift ;;
      --forget-failed) forget_failed=1 && shift ;;
      --no-lock) no_lock=1 && shift ;;
      --allow-weights-only) allow_weights_only=1 && shift ;;
      -n | --explain) explain=1 && shift ;;
      --json) json=1 explain=1 && shift ;;
      -q | --quiet) quiet=1 && shift ;;
      -h | --help)
        wandb_resume::usage
        stop=1
        return 0
        ;;
      --version)
        printf 'train-resume %s\n' "$_WANDB_RESUME_VERSION"
        stop=1
        return 0
        ;;
      --lib)
        # The library file this decision runs (after any install): for job scripts,
        # source "$(train-resume --lib)".
        printf '%s\n' "$_WANDB_RESUME_LIB.sh"
        stop=1
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
  command=("$@")
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
}
