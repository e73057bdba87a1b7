# shellcheck shell=bash
# Shared setup for the bats suites: bats-support/bats-assert, a clean environment,
# a work dir whose path holds a space, and helpers that build checkpoints.
# shellcheck disable=SC2034,SC2154 # OUT/WORK are used by the test files; output is set by bats' run

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
FIXTURES=$ROOT/tests/fixtures
TR=$ROOT/bin/train-resume
LIB=$ROOT/lib/wandb_resume.sh
load "$ROOT/.deps/node_modules/bats-support/load"
load "$ROOT/.deps/node_modules/bats-assert/load"

common_setup() {
  export HOME=$BATS_TEST_TMPDIR/home
  mkdir -p "$HOME"
  WORK="$BATS_TEST_TMPDIR/work dir"
  OUT=$WORK/out
  mkdir -p "$WORK"
  cd "$WORK" || return 1
  unset WANDB_RUN_ID WANDB_RESUME WANDB_DIR RESUME_FROM_CHECKPOINT_DIR WANDB_RESUME_SOURCES \
    WANDB_RESUME_MODE WANDB_RESUME_LANG TRAIN_RESUME_CHECKPOINT TRAIN_RESUME_RUN_ID_SOURCE \
    TRAIN_RESUME_OUTPUT_DIR \
    LC_ALL _WANDB_RESUME_LOADED _WANDB_RESUME_EXPORTED_ID TRAIN_RESUME_JOB TRAIN_RESUME_JOB_DIR \
    TRAIN_RESUME_LOCK_WAIT TRAIN_RESUME_STOP_SIGNALS SLURM_JOB_ID SLURM_ARRAY_JOB_ID \
    SLURM_ARRAY_TASK_ID SLURM_RESTART_COUNT SLURM_STEP_ID SLURM_PROCID SLURM_CLUSTER_NAME
  export LANG=C.UTF-8
}

# The W&B run id a recorded fixture's callback stored: an independent witness of the
# id in its run folders. Arguments: FIXTURE CHECKPOINT
fixture_state_id() {
  jq -r '.stateful_callbacks.WandbResumeCallback.args.wandb_run_id' \
    "$FIXTURES/$1/$2/trainer_state.json"
}

# A checkpoint as a full Trainer save leaves it: the weights and state files of a real
# save (tests/fixtures/saves/full/checkpoint-2: model.safetensors, optimizer.pt,
# scheduler.pt, rng_state.pth, ...; plain copies, some tests damage them), then
# DIR/trainer_state.json as transformers writes it, last (sorted keys, indent 2).
# With STATE_ONLY=1 only trainer_state.json (a folder no trainer could resume from).
# max_steps: 6, or STEP + 2 from step 6 on (a run not yet at its end).
# Arguments: DIR STEP [JQ_FILTER applied to the state]
make_state() {
  local f
  mkdir -p "$1"
  if [[ ${STATE_ONLY:-} != 1 ]]; then
    for f in "$FIXTURES"/saves/full/checkpoint-2/*; do
      [[ ${f##*/} == trainer_state.json ]] || cp -- "$f" "$1/" || return
    done
  fi
  jq -n -S --indent 2 --argjson step "$2" '{
      best_global_step: null, best_metric: null, best_model_checkpoint: null,
      epoch: 0.5, eval_steps: 500, global_step: $step, is_hyper_param_search: false,
      is_local_process_zero: true, is_world_process_zero: true,
      log_history: [range(1; $step + 1) | {loss: 0.5, step: .}], logging_steps: 1,
      max_steps: ([6, $step + 2] | max), num_input_tokens_seen: 0, num_train_epochs: 1, save_steps: 2,
      stateful_callbacks: {TrainerControl: {args: {should_save: true}, attributes: {}}},
      total_flos: 0, train_batch_size: 2, trial_name: null, trial_params: null
    } | '"${3:-.}" >"$1/trainer_state.json"
}

# Make a W&B-style run folder holding run-<id>.wandb. Arguments: WANDB_DIR NAME ID
make_run() {
  mkdir -p "$1/$2"
  : >"$1/$2/run-$3.wandb"
}

# Run train-resume --explain --json with ARGS; stdout and stderr apart.
explain() {
  run --separate-stderr "$TR" --explain --json "$@"
}

# Print FIELD (a jq path) of the JSON in $output.
field() {
  jq -r "$1" <<<"$output"
}

# A listing of every file under DIR with size and mtime: to show nothing was written.
snapshot() {
  find "$1" -printf '%p %s %T@ %m\n' | LC_ALL=C sort
}

# Put a TOOL on PATH ($WORK/fakebin, first in PATH for `env PATH=...`) that is the
# real one, except when one of its arguments matches the glob ARG: then it runs
# SHELL_CODE (fault injection: a real tool cannot be made to crash on demand).
# Arguments: TOOL ARG SHELL_CODE
fake_tool_on() {
  local real
  real=$(command -v "$1") || return
  mkdir -p "$WORK/fakebin"
  # shellcheck disable=SC2016 # the fake's own code, expanded when it runs
  printf '#!/bin/bash\nfor a; do [[ $a == %s ]] && { %s; }; done\nexec %q "$@"\n' \
    "$2" "$3" "$real" >"$WORK/fakebin/$1"
  chmod +x "$WORK/fakebin/$1"
}

# Run a command as an unprivileged user (the tests run as root in CI, and root
# reads mode-000 files). Skips the test where that is not possible.
as_nobody() {
  if ((EUID != 0)); then
    "$@"
  elif command -v setpriv >/dev/null; then
    setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
  else
    skip 'running as root without setpriv: cannot test an unreadable path'
  fi
}

# A work dir that an unprivileged user can reach (BATS_TEST_TMPDIR is private).
open_workdir() {
  WORK=$(mktemp -d /tmp/train-resume-test.XXXXXX)
  chmod 755 "$WORK"
  OUT=$WORK/out
  cd "$WORK" || return 1
  as_nobody test -x "$LIB" -o -r "$LIB" ||
    skip "$LIB is not readable by an unprivileged user"
}

# Remove a work dir made by open_workdir, mode-000 folders included.
cleanup_workdir() {
  if [[ $WORK == /tmp/train-resume-test.* ]]; then
    chmod -R u+rwx "$WORK" 2>/dev/null
    rm -rf "$WORK"
  fi
}

# Print a PATH holding the commands of the current one but jq (symlinks in
# $WORK/nojq-bin, made once a test): the machine without jq.
no_jq_path() {
  local bin=$WORK/nojq-bin d
  if [[ ! -d $bin ]]; then
    mkdir -p "$bin"
    local IFS=:
    for d in $PATH; do
      [[ -d $d ]] || continue
      find "$d" -maxdepth 1 \( -type f -o -type l \) ! -name jq -exec ln -s -t "$bin" -- {} + 2>/dev/null || :
    done
  fi
  printf '%s\n' "$bin"
}
