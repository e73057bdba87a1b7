#!/usr/bin/env bats
# One writer per output dir: bin/train-resume takes an exclusive flock on
# OUTPUT_DIR/.train-resume/lock before deciding and holds it through the exec.
# shellcheck disable=SC2030,SC2031 # each @test is its own subshell
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
  make_state "$OUT/checkpoint-2" 2
  HOLDER=$OUT/.train-resume/lock.holder
}

teardown() {
  [[ -z ${BG:-} ]] || kill "$BG" 2>/dev/null || true
  cleanup_workdir
}

# Start train-resume holding the lock, running `sleep 30` in the background, and
# wait until it holds it. Sets: BG (its pid, which the exec keeps).
start_holder() {
  SLURM_JOB_ID=4242 "$TR" -o "$OUT" -q -- sleep 30 &
  BG=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s $HOLDER ]] && return 0
    sleep 0.1
  done
  return 1
}

@test "a second job on a locked output dir: exit 1 at once, the holder named, nothing run" {
  start_holder
  run -1 --separate-stderr "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial "output dir $OUT is in use by another train-resume (pid=$BG host=$(uname -n) job=4242; lock $OUT/.train-resume/lock)"
  refute_stderr --partial 'resuming from checkpoint'
  assert [ ! -e "$WORK/ran" ]
}

@test "the lock is held through the exec: by the trainer's own pid, released when it ends" {
  start_holder
  assert_equal "$(cat "$HOLDER")" "pid=$BG host=$(uname -n) job=4242"
  # The process that holds it becomes the trainer (sleep) by the exec, not a shell
  # waiting for it (the holder line is written just before the exec).
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(ps -o comm= -p "$BG") == sleep ]] && break
    sleep 0.1
  done
  assert_equal "$(ps -o comm= -p "$BG")" sleep
  kill "$BG"
  wait "$BG" || true
  BG=''
  run -0 --separate-stderr "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert [ -e "$WORK/ran" ]
}

@test "--explain takes no lock and writes nothing in the output dir" {
  start_holder
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
}

@test "--no-lock runs without the lock" {
  start_holder
  run -0 --separate-stderr "$TR" -o "$OUT" --no-lock -- touch "$WORK/ran"
  assert [ -e "$WORK/ran" ]
}

@test "a new output dir is locked too, and still reported as new (does not exist yet)" {
  rm -r "$OUT"
  run -0 --separate-stderr "$TR" -o "$OUT" -- true
  assert_stderr --partial 'does not exist yet'
  assert [ -f "$OUT/.train-resume/lock" ]
}

@test "the sourced library offers the same: wandb_resume::lock" {
  start_holder
  # shellcheck disable=SC2016 # expanded by the inner bash
  run -1 --separate-stderr bash -c 'source "$1/lib/wandb_resume.sh" && wandb_resume::lock "$2"' _ "$ROOT" "$OUT"
  assert_stderr --partial "is in use by another train-resume (pid=$BG "
  kill "$BG"
  wait "$BG" || true
  BG=''
  # shellcheck disable=SC2016 # expanded by the inner bash
  run -0 bash -c 'source "$1/lib/wandb_resume.sh" && wandb_resume::lock "$2" &&
    ! flock -n "$2/.train-resume/lock" true' _ "$ROOT" "$OUT"
}

@test "a file system without flock (Lustre without -o flock) is an error naming --no-lock" {
  mkdir -p "$WORK/fakebin"
  printf '#!/bin/bash\necho "flock: 10: Function not implemented" >&2\nexit 1\n' >"$WORK/fakebin/flock"
  chmod +x "$WORK/fakebin/flock"
  run -1 --separate-stderr env PATH="$WORK/fakebin:$PATH" "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial 'cannot lock'
  assert_stderr --partial 'Function not implemented'
  assert_stderr --partial '--no-lock'
  assert [ ! -e "$WORK/ran" ]
}
