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

# Step 3: what is exported (nothing is exported before this step).
#   resume, id found:  WANDB_RUN_ID=<id>, WANDB_RESUME=must (or --resume-mode)
#   resume, no id:     WANDB_RESUME=allow
#   new run:           WANDB_RESUME=allow; TRAIN_RESUME_CHECKPOINT unset
#   resume:            TRAIN_RESUME_CHECKPOINT=<absolute path>,
#                      TRAIN_RESUME_RUN_ID_SOURCE=<source of the id> (unset without one)
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
  if ((explain)); then
    ((${#command[@]} == 0)) || wandb_resume::_log info note "▶ would run: ${command[*]}"
    wandb_resume::_log info explained
  else
    wandb_resume::_log info configured
    [[ $caller == cli ]] && _WANDB_RESUME_EXEC=("${command[@]}")
  fi
  return 0
}
