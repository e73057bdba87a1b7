# shellcheck shell=bash
# shellcheck disable=SC2154 # a part: the decision's state is shared through the locals of its caller (decide.bash), which shellcheck cannot follow across files
#
# export.bash: what a decision exports (and unsets).
# Part of lib/wandb_resume.sh.

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

# Drop the `.`, empty and `DIR/..` parts of the absolute path in `py_root` (bin/train-resume
# finds its root as <bin>/..), without a process; left as it is when a DIR before a
# `..` is a symlink (the kernel would go up from where it points). Sets: py_root.
wandb_resume::_tidy_path() {
  local IFS=/ part tidy=''
  local -a parts=() kept=()
  read -r -a parts <<<"$py_root"
  for part in "${parts[@]}"; do
    case $part in
      '' | .) ;;
      ..)
        [[ ! -L $tidy ]] || return 0
        ((${#kept[@]} == 0)) || unset 'kept[-1]'
        tidy=/${kept[*]}
        ;;
      *)
        kept+=("$part")
        tidy=/${kept[*]}
        ;;
    esac
  done
  py_root=/${kept[*]}
}

# The Python hand-off: put the bootstrap folder (train_resume/bootstrap: a
# sitecustomize that installs train_resume.hook in every Python process of the job)
# and the package's root first on PYTHONPATH, once. TRAIN_RESUME_HOOK=0 takes them
# out again (a PYTHONPATH left empty is unset). Nothing when they are not installed.
# Reads: _WANDB_RESUME_LIB, PYTHONPATH, TRAIN_RESUME_HOOK, explain.
wandb_resume::_export_pythonpath() {
  local py_root=${_WANDB_RESUME_LIB%/lib/wandb_resume} rest wanted
  [[ $py_root == /* ]] || py_root=$PWD/$py_root
  wandb_resume::_tidy_path
  local boot=$py_root/train_resume/bootstrap
  [[ -f $boot/sitecustomize.py ]] || return 0
  rest=:${PYTHONPATH:-}:
  while [[ $rest == *:"$boot":* ]]; do rest=${rest/:"$boot":/:}; done
  while [[ $rest == *:"$py_root":* ]]; do rest=${rest/:"$py_root":/:}; done
  rest=${rest#:}
  rest=${rest%:}
  if [[ ${TRAIN_RESUME_HOOK:-} == 0 ]]; then
    wanted=$rest
    if [[ -z $wanted ]]; then
      wandb_resume::_unset PYTHONPATH 'TRAIN_RESUME_HOOK=0: no Python hand-off'
      return 0
    fi
  else
    wanted=$boot:$py_root${rest:+:$rest}
  fi
  [[ ${PYTHONPATH-} == "$wanted" && -n ${PYTHONPATH+set} ]] ||
    wandb_resume::_export PYTHONPATH "$wanted"
}

# Step 3: what is exported (nothing is exported before this step).
#   resume, id found:  WANDB_RUN_ID=<id>, WANDB_RESUME=must (or --resume-mode)
#   resume, no id:     WANDB_RESUME=allow
#   new run:           WANDB_RESUME=allow; TRAIN_RESUME_CHECKPOINT unset
#   resume:            TRAIN_RESUME_CHECKPOINT=<absolute path>,
#                      TRAIN_RESUME_RUN_ID_SOURCE=<source of the id> (unset without one)
#   always:            PYTHONPATH=<bootstrap>:<package root>:... (_export_pythonpath)
# WANDB_RUN_ID "not set by us" on a new run or without an id: one we exported
# earlier in this shell is unset, an empty or invalid one is unset (W&B would refuse
# to start), one the user set is left alone.
# Reads: mode, ckpt, run_id, run_id_source, wandb_resume, explain, caller, command.
# Sets: _WANDB_RESUME_EXPORTED_ID; with bin/train-resume, _WANDB_RESUME_EXEC.
wandb_resume::_export_decision() {
  local id_problem
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
  wandb_resume::_export_pythonpath
  if ((explain)); then
    ((${#command[@]} == 0)) || wandb_resume::_log info note "▶ would run: ${command[*]}"
    wandb_resume::_log info explained
  else
    wandb_resume::_log info configured
    [[ $caller == cli ]] && _WANDB_RESUME_EXEC=("${command[@]}")
  fi
  return 0
}
