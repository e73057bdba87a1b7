# shellcheck shell=bash
#
# decide.bash: the decision, step by step, in the order of docs/decision.md.
# Each step lives with its concern:
#   0. read the options               wandb_resume::_parse_options    options.bash
#  1a. which output dir               wandb_resume::_choose_output_dir checkpoint.bash
#      the job: lock, shared decision wandb_resume::_job_join         lock.bash
#                                     wandb_resume::_job_read_decision job.bash
#   1. which checkpoint               wandb_resume::_choose_checkpoint checkpoint.bash
#   2. which W&B run id               wandb_resume::_find_run_id       run_id.bash
#  2b. --wandb-rewind                 wandb_resume::_decide_rewind     export.bash
#      offline: wandb old?            wandb_resume::_check_offline_wandb export.bash
#      shared with the job's tasks    wandb_resume::_job_write_decision job.bash
#   3. what is exported               wandb_resume::_export_decision   export.bash
# The steps share the decision's state through the locals declared here (bash's
# dynamic scope); each step's header says what it reads and sets.
# Part of lib/wandb_resume.sh.

# The decision. Arguments: CALLER (library|cli) OPTIONS [--] [COMMAND...]
# Returns: 0 decided, 1 the decision failed (nothing exported), 2 usage error.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: checkpoint, config, wandb_dir, quiet, rewind, forget_failed, allow_weights_only, resume_mode, sources, source_list, command, want, how, cfg_resume, cfg_output_dir, parent_gone, job_key, step_key, job_dir, host, mutex_fd, detail, run_id, run_id_source, wandb_resume, resume_from, wb_version, wb_python, st_status, st_reason, st_step, st_max, st_where, st_type, st_value, st_wstep, skipped, warnings
wandb_resume::_configure() {
  local caller=$1
  shift
  # The options (step 0).
  local output_dir='' checkpoint='' config='' wandb_dir='' explain=0 json=0 quiet=0 stop=0 rewind=0
  local forget_failed=0 no_lock=0 allow_weights_only=0
  local resume_mode=${WANDB_RESUME_MODE:-must}
  local sources=${WANDB_RESUME_SOURCES:-$_WANDB_RESUME_DEFAULT_SOURCES}
  local -a source_list=() command=()
  # What is asked for (step 1a).
  local want='' how='' cfg_resume='' cfg_output_dir='' parent_gone=''
  # The job (lock.bash, job.bash): the mutex is held while deciding, never after.
  local job_key='' step_key='' job_dir='' host='' mutex_fd='' reused=0
  # The decision (steps 1 and 2), and what was skipped or warned about on the way.
  local mode='' ckpt='' detail='' run_id='' run_id_source='' wandb_resume=allow error='' resume_from=''
  local wb_version='' wb_python=''
  local st_status='' st_reason='' st_step='' st_max='' st_kb=''
  local -a st_where=() st_type=() st_value=() st_wstep=() skipped=() warnings=()

  wandb_resume::_parse_options "$caller" "$@" || return
  ((stop)) && return 0
  local rc=0
  wandb_resume::_decide || rc=$?
  wandb_resume::_mutex_release
  return "$rc"
}

# Steps 1 to 3, under the job's mutex when it is taken (a COMMAND to run, or the
# library's configure; not with --explain or --no-lock): the first task of a job
# decides and shares the decision, the others use it. Returns: as _configure.
wandb_resume::_decide() {
  wandb_resume::_choose_output_dir || return
  if [[ -n $output_dir ]] && ((! explain && ! no_lock)); then
    if ! wandb_resume::_job_join || ! wandb_resume::_job_read_decision; then
      wandb_resume::_log error error "$error"
      return 1
    fi
  fi
  if ((! reused)); then
    wandb_resume::_choose_checkpoint || return
    if [[ $mode == resume ]]; then
      # df (for _check_space) runs while the run id is looked for.
      local df_fd
      exec {df_fd}< <([[ ! -d $output_dir ]] || exec df -Pk -- "$output_dir" 2>/dev/null)
      wandb_resume::_find_run_id
      wandb_resume::_check_space "$output_dir" "$ckpt" "$st_kb" "$df_fd"
      wandb_resume::_decide_rewind
      wandb_resume::_check_offline_wandb
    fi
    if ((json)) && ! wandb_resume::_print_json || ! wandb_resume::_job_write_decision; then
      wandb_resume::_log error error "$error"
      return 1
    fi
  fi
  wandb_resume::_export_decision
}
