# shellcheck shell=bash
#
# export.bash: what a decision exports (and unsets).
# Part of lib/wandb_resume.sh.

# The variables a decision sets for its command (exported or unset), which
# wandb_resume::supervise puts back as they were before wandb_resume::configure once
# the trainer has ended, so that later steps of a job script (an evaluation's
# wandb.init()) start their own W&B runs. Not the job's TRAIN_RESUME_JOB and
# TRAIN_RESUME_JOB_DIR: the shell stays a process of the job (and holds its lock)
# until it ends, and a later train-resume in it is a task of the same job.
_WANDB_RESUME_DECISION_VARS='WANDB_RUN_ID WANDB_RESUME WANDB_RESUME_FROM TRAIN_RESUME_CHECKPOINT TRAIN_RESUME_RUN_ID_SOURCE TRAIN_RESUME_OUTPUT_DIR PYTHONPATH'
# What they were before the first configure that exported in this shell, and what the
# last one left (NAME -> x<value>: exported; s<value>: set, not exported; no entry:
# unset); _WANDB_RESUME_REMEMBERED is 1 while they are remembered.
declare -gA _WANDB_RESUME_BEFORE=() _WANDB_RESUME_AFTER=()
_WANDB_RESUME_REMEMBERED=''

# How variable NAME is now, in the encoding of _WANDB_RESUME_BEFORE.
# Arguments: NAME. Sets: state (u: unset, x<value>, s<value>).
wandb_resume::_var_state() {
  if [[ -z ${!1+set} ]]; then
    state=u
  elif [[ ${!1@a} == *x* ]]; then
    state=x${!1}
  else
    state=s${!1}
  fi
}

# Remember the decision's variables: before the exports (WHEN=before, once until they
# are put back) or after them (WHEN=after). Arguments: WHEN
wandb_resume::_remember_decision() {
  local name state
  [[ $1 == after || -z $_WANDB_RESUME_REMEMBERED ]] || return 0
  for name in $_WANDB_RESUME_DECISION_VARS; do
    wandb_resume::_var_state "$name"
    if [[ $1 == before ]]; then
      _WANDB_RESUME_BEFORE[$name]=$state
    else
      _WANDB_RESUME_AFTER[$name]=$state
    fi
  done
  _WANDB_RESUME_REMEMBERED=1
}

# Put the decision's variables back as they were before wandb_resume::configure, each
# that is still as the last decision left it (one the script set since is its own:
# left alone, said); then forget them. Nothing when no configure exported in this
# shell. Logs what it did.
wandb_resume::_restore_decision() {
  local name state was
  local -a back=() kept=()
  [[ -n $_WANDB_RESUME_REMEMBERED ]] || return 0
  for name in $_WANDB_RESUME_DECISION_VARS; do
    wandb_resume::_var_state "$name"
    was=${_WANDB_RESUME_BEFORE[$name]-u}
    [[ $state == "$was" ]] && continue
    if [[ $state != "${_WANDB_RESUME_AFTER[$name]-u}" ]]; then
      kept+=("$name")
      continue
    fi
    case $was in
      u) unset "$name" ;;
      x*) export "$name=${was#x}" ;;
      s*)
        declare -g "$name=${was#s}"
        # shellcheck disable=SC2163 # the variable named by $name, on purpose
        export -n "$name"
        ;;
    esac
    back+=("$name")
  done
  _WANDB_RESUME_BEFORE=() _WANDB_RESUME_AFTER=() _WANDB_RESUME_REMEMBERED='' _WANDB_RESUME_EXPORTED_ID=''
  local IFS=,
  ((${#back[@]} == 0)) ||
    wandb_resume::_log info note "🔧 put back as they were before wandb_resume::configure: ${back[*]} (a later wandb.init() in this script starts a run of its own)"
  ((${#kept[@]} == 0)) ||
    wandb_resume::_log info note "🔧 changed by this script after wandb_resume::configure, left as it set them: ${kept[*]}"
  return 0
}

# Export NAME=VALUE (or, with --explain, say it would). Arguments: NAME VALUE
# shellcheck disable=SC2154 # shared through dynamic scope, which shellcheck does not follow; read here, a caller's: explain
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

# The Python hand-off: put the bootstrap folder (train_resume/bootstrap: a
# sitecustomize that installs train_resume.hook in every Python process of the job)
# and the package's root first on PYTHONPATH, once. TRAIN_RESUME_HOOK=0 takes them
# out again (a PYTHONPATH left empty is unset). Nothing when they are not installed.
# Reads: _WANDB_RESUME_LIB, PYTHONPATH, TRAIN_RESUME_HOOK, explain.
wandb_resume::_export_pythonpath() {
  local py_root=${_WANDB_RESUME_LIB%/lib/wandb_resume} rest wanted
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

# The wandb version the offline resume and sync were verified with (FACTS: 0.31.0).
_WANDB_RESUME_OFFLINE_VERIFIED=0.31.0

# Is version A >= version B? (dotted numbers; a suffix such as rc1 or .dev0 is ignored)
# Arguments: A B. Returns 0 yes, 1 no.
wandb_resume::_version_ge() {
  local -a a b
  local i
  IFS=. read -r -a a <<<"${1%%[!0-9.]*}"
  IFS=. read -r -a b <<<"${2%%[!0-9.]*}"
  for i in 0 1 2; do
    ((10#${a[i]:-0} > 10#${b[i]:-0})) && return 0
    ((10#${a[i]:-0} < 10#${b[i]:-0})) && return 1
  done
  return 0
}

# The version of wandb the trainer will import: asked of COMMAND's Python when
# COMMAND starts with python*, else of python3 on PATH (one short process, only
# when a check needs it, once a decision). Sets: wb_version ("" when wandb is not
# found), wb_python (the decision's locals). Reads: command.
# shellcheck disable=SC2154 # shared through dynamic scope, which shellcheck does not follow; read here, a caller's: command
wandb_resume::_wandb_version() {
  [[ -n $wb_python ]] && return 0
  wb_python=python3
  [[ ${#command[@]} -gt 0 && ${command[0]##*/} == python* ]] && wb_python=${command[0]}
  wb_version=$("$wb_python" -c 'import importlib.metadata as m; print(m.version("wandb"))' 2>/dev/null) ||
    wb_version=''
  [[ $wb_version =~ ^[0-9]+(\.[0-9]+)*[A-Za-z0-9.+-]*$ ]] || wb_version=''
}

# Step 2b (--wandb-rewind): on a resume, rewind the run to the _step the checkpoint
# recorded (stateful_callbacks.*.args.wandb_step beside the same run id) instead of
# resuming it: resume_from=<id>?_step=<n>. Needs wandb >= 0.17.1, and >= 0.20.0
# offline (WANDB_MODE=offline|dryrun: the rewind is applied at sync). Falls back to
# WANDB_RESUME (with a warning that says why) without a run id, without a recorded
# step, or with a wandb too old or not found.
# Reads: rewind, mode, run_id, st_value/st_type/st_wstep, command, WANDB_MODE.
# Sets: resume_from, wandb_resume ("" when rewound); appends to warnings.
# shellcheck disable=SC2154 # shared through dynamic scope, which shellcheck does not follow; read here, a caller's: rewind, mode, st_value, st_type, ckpt
wandb_resume::_decide_rewind() {
  local i n='' need=0.17.1
  ((rewind)) && [[ $mode == resume ]] || return 0
  if [[ -z $run_id ]]; then
    wandb_resume::_warn "--wandb-rewind: no W&B run id found, nothing to rewind; WANDB_RESUME=$wandb_resume instead"
    return 0
  fi
  for i in "${!st_value[@]}"; do
    if [[ ${st_type[i]} == string && ${st_value[i]} == "$run_id" && -n ${st_wstep[i]:-} ]]; then
      n=${st_wstep[i]}
      break
    fi
  done
  if [[ -z $n ]]; then
    wandb_resume::_warn "--wandb-rewind: $ckpt/trainer_state.json records no W&B _step (wandb_step) for run $run_id (saved without train-resume's callback, or before W&B logged a row); resuming without a rewind: WANDB_RESUME=$wandb_resume"
    return 0
  fi
  [[ ${WANDB_MODE:-} == @(offline|dryrun) ]] && need=0.20.0
  wandb_resume::_wandb_version
  if [[ -z $wb_version ]]; then
    wandb_resume::_warn "--wandb-rewind: wandb not found by $wb_python, cannot check it rewinds (needs >= $need); resuming without a rewind: WANDB_RESUME=$wandb_resume"
    return 0
  fi
  if ! wandb_resume::_version_ge "$wb_version" "$need"; then
    wandb_resume::_warn "--wandb-rewind: wandb $wb_version cannot rewind ${WANDB_MODE:+in $WANDB_MODE mode }(needs >= $need); resuming without a rewind: WANDB_RESUME=$wandb_resume"
    return 0
  fi
  resume_from="$run_id?_step=$n"
  wandb_resume=''
  wandb_resume::_log info note "⏪ --wandb-rewind: the W&B run rewinds to _step $n, as saved with $ckpt (wandb $wb_version)"
}

# The offline resume (one run folder per segment, replayed rows, wandb sync) was
# verified with wandb 0.31: on a resume in offline mode (WANDB_MODE=offline|dryrun),
# warn when the trainer's wandb is older. Reads: mode, WANDB_MODE, command.
# Appends to warnings.
wandb_resume::_check_offline_wandb() {
  [[ $mode == resume && ${WANDB_MODE:-} == @(offline|dryrun) ]] || return 0
  wandb_resume::_wandb_version
  [[ -n $wb_version ]] || return 0
  wandb_resume::_version_ge "$wb_version" "$_WANDB_RESUME_OFFLINE_VERIFIED" && return 0
  wandb_resume::_warn "wandb $wb_version is older than $_WANDB_RESUME_OFFLINE_VERIFIED, the version the offline resume was verified with (WANDB_MODE=$WANDB_MODE): how it numbers a resumed segment's rows and how wandb sync appends them may differ; check with train-resume sync --dry-run"
}

# Step 3: what is exported (nothing is exported before this step).
#   resume, id found:  WANDB_RUN_ID=<id>, WANDB_RESUME=must (or --resume-mode)
#   ... --wandb-rewind: WANDB_RESUME_FROM=<id>?_step=<n> instead (WANDB_RESUME unset)
#   resume, no id:     WANDB_RESUME=allow
#   new run:           WANDB_RESUME=allow; TRAIN_RESUME_CHECKPOINT unset
#   resume:            TRAIN_RESUME_CHECKPOINT=<absolute path>,
#                      TRAIN_RESUME_RUN_ID_SOURCE=<source of the id> (unset without one)
#   both:              TRAIN_RESUME_OUTPUT_DIR=<absolute output dir> (unset without one)
#   always:            PYTHONPATH=<bootstrap>:<package root>:... (_export_pythonpath)
# WANDB_RUN_ID "not set by us" on a new run or without an id: one we exported
# earlier in this shell is unset, an empty or invalid one is unset (W&B would refuse
# to start), one the user set is left alone.
# Reads: mode, ckpt, run_id, run_id_source, wandb_resume, resume_from, output_dir,
#   explain, caller, command.
# Sets: _WANDB_RESUME_EXPORTED_ID, the remembered variables (_remember_decision);
#   with bin/train-resume, _WANDB_RESUME_EXEC.
# shellcheck disable=SC2154 # shared through dynamic scope, which shellcheck does not follow; read here, a caller's: caller
wandb_resume::_export_decision() {
  local id_problem
  ((explain)) || wandb_resume::_remember_decision before
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
  if [[ -n $resume_from ]]; then
    wandb_resume::_export WANDB_RESUME_FROM "$resume_from"
    wandb_resume::_unset WANDB_RESUME 'W&B refuses it together with WANDB_RESUME_FROM'
  else
    wandb_resume::_export WANDB_RESUME "$wandb_resume"
    wandb_resume::_unset WANDB_RESUME_FROM 'no rewind'
  fi
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
  # The dir this decision is for: the Python hook compares it with each Trainer's real
  # output_dir, and decides again for a Trainer whose dir is another one.
  if [[ -n $output_dir ]]; then
    wandb_resume::_export TRAIN_RESUME_OUTPUT_DIR "$output_dir"
  else
    wandb_resume::_unset TRAIN_RESUME_OUTPUT_DIR 'no output dir'
  fi
  ((explain)) || wandb_resume::_export_job
  wandb_resume::_export_pythonpath
  ((explain)) || wandb_resume::_remember_decision after
  if ((explain)); then
    ((${#command[@]} == 0)) || wandb_resume::_log info note "▶ would run: ${command[*]}"
    wandb_resume::_log info explained
  else
    wandb_resume::_log info configured
    [[ $caller == cli ]] && _WANDB_RESUME_EXEC=("${command[@]}")
  fi
  return 0
}
