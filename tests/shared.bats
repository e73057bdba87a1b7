#!/usr/bin/env bats
# lib/wandb_resume/shared.env: the names and defaults bash and Python share, defined
# once there. These tests check that the bash side reads it (the writers and readers
# of the .train-resume/ layout, the stop signals, the finished rule) and that the
# library's functions run under nounset (a misspelled name fails loudly).
# shellcheck disable=SC2016 # single-quoted scripts are expanded by the inner shell
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
  SHARED=$ROOT/lib/wandb_resume/shared.env
}

# Print VALUE of NAME in shared.env (the file read independently of the library).
shared() {
  sed -n "s/^$1=//p" "$SHARED"
}

@test "every NAME=VALUE of shared.env is the library's _WANDB_RESUME_NAME, read as data" {
  local name value n=0
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
  while IFS='=' read -r name value; do
    [[ -z $name || $name == '#'* ]] && continue
    local var=_WANDB_RESUME_$name
    [[ ${!var-unset} == "$value" ]] || fail "$var is '${!var-unset}', shared.env says '$value'"
    n=$((n + 1))
  done <"$SHARED"
  ((n >= 13)) || fail "only $n definitions read from $SHARED"
}

@test "shared.env holds only comments and NAME=VALUE lines without spaces or quotes" {
  run grep -nvE '^(#.*|[A-Z][A-Z0-9_]*=[^[:space:]"'"'"'$`]*|)$' "$SHARED"
  assert_failure 1
  assert_output ''
}

@test "supervise forwards its default --signal and TERM as shared.env's STOP_SIGNALS" {
  run -0 bash -c 'source "$1" && wandb_resume::supervise -- bash -c "printf %s \"\$TRAIN_RESUME_STOP_SIGNALS\" >\"\$1/stops\"" _ "$2"' \
    _ "$LIB" "$WORK"
  run -0 cat "$WORK/stops"
  assert_output "$(shared STOP_SIGNALS)"
}

@test "supervise --signal accepts exactly shared.env's STOP_SIGNAL_CHOICES" {
  local sig
  local -a choices
  IFS=, read -ra choices <<<"$(shared STOP_SIGNAL_CHOICES)"
  for sig in "${choices[@]}"; do
    run -0 --separate-stderr bash -c 'source "$1" && wandb_resume::supervise --signal "$2" -- true' _ "$LIB" "$sig"
  done
  run -2 --separate-stderr bash -c 'source "$1" && wandb_resume::supervise --signal ALRM -- true' _ "$LIB"
  for sig in "${choices[@]}"; do
    assert_stderr --regexp "--signal must be .*\\b$sig\\b.*, not: ALRM"
  done
}

@test "the job state dir holds shared.env's LOCK_FILE, JOB_FILE, PROCS_DIR and DECISION_FILE" {
  make_state "$OUT/checkpoint-2" 2
  run -0 --separate-stderr "$TR" -o "$OUT" -- true
  local dir
  dir=$WORK/$(shared STATE_DIR)/out
  [[ -f $dir/$(shared LOCK_FILE) ]] || fail "no $dir/$(shared LOCK_FILE)"
  [[ -f $dir/$(shared JOB_FILE) ]] || fail "no $dir/$(shared JOB_FILE)"
  [[ -d $dir/$(shared PROCS_DIR) ]] || fail "no $dir/$(shared PROCS_DIR)"
  [[ -f $dir/$(shared DECISION_FILE) ]] || fail "no $dir/$(shared DECISION_FILE)"
}

@test "record_save writes, and the decision reads, shared.env's SAVED_DIR record" {
  make_state "$OUT/checkpoint-2" 2
  run -0 --separate-stderr bash -c 'source "$1" && wandb_resume::record_save "$2"' _ "$LIB" "$OUT/checkpoint-2"
  [[ -s $OUT/$(shared STATE_DIR)/$(shared SAVED_DIR)/checkpoint-2 ]] || fail 'no save record where shared.env says'
}

@test "a failed-load record under shared.env's FAILED_DIR makes the decision pass the checkpoint over" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  mkdir -p "$OUT/$(shared STATE_DIR)/$(shared FAILED_DIR)"
  printf 'OSError: broken\n' >"$OUT/$(shared STATE_DIR)/$(shared FAILED_DIR)/checkpoint-4"
  explain -o "$OUT"
  assert_success
  [[ $(field .checkpoint) == "$OUT/checkpoint-2" ]] || fail "chose $(field .checkpoint)"
}

@test "supervise reads an end record under shared.env's ENDED_FILE with each ENDED_FINISHED reason as finished" {
  # The trainer exits 138 (SIGUSR1's status) after its end record: finished only by
  # the record (without one, or with another reason, that exit is a preemption).
  local reason
  local -a reasons
  IFS=, read -ra reasons <<<"$(shared ENDED_FINISHED)"
  for reason in "${reasons[@]}"; do
    rm -rf "$OUT"
    mkdir -p "$OUT"
    run -0 --separate-stderr bash -c 'source "$1" && wandb_resume::supervise -o "$2" -- bash -c "mkdir -p \"\$1\" && printf \"reason=%s\\n\" \"\$2\" >\"\$1/\$3\"; exit 138" _ "$3" "$4" "$5"' \
      _ "$LIB" "$OUT" "$OUT/$(shared STATE_DIR)" "$reason" "$(shared ENDED_FILE)"
    [[ -f $OUT/$(shared DONE_FILE) ]] || fail "reason=$reason: no $(shared DONE_FILE)"
  done
}

@test "an end record of shared.env's ENDED_STOPPED reason is preempted: no DONE" {
  run --separate-stderr bash -c 'source "$1" && wandb_resume::supervise -o "$2" -- bash -c "mkdir -p \"\$1\" && printf \"reason=%s\\nsignal=USR1\\n\" \"\$2\" >\"\$1/\$3\"; exit 1" _ "$3" "$4" "$5"' \
    _ "$LIB" "$OUT" "$OUT/$(shared STATE_DIR)" "$(shared ENDED_STOPPED)" "$(shared ENDED_FILE)"
  assert_failure 1
  assert_stderr --partial 'preempted'
  [[ ! -e $OUT/$(shared DONE_FILE) ]] || fail "$(shared DONE_FILE) written for a preempted run"
}

@test "at max_steps means max_steps > 0 and global_step >= max_steps (the decision's warning and supervise's DONE)" {
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
  local case step max want got
  for case in 6:6:0 7:6:0 5:6:1 0:0:1 3:0:1 x:6:1 6::1; do
    IFS=: read -r step max want <<<"$case"
    got=0
    wandb_resume::_at_max_steps "$step" "$max" || got=$?
    [[ $got == "$want" ]] || fail "step '$step' max '$max': $got, not $want"
  done
}
