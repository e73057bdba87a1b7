#!/usr/bin/env bats
# Failed-load records: the Python hook writes OUTPUT_DIR/.train-resume/failed/<name>
# (one line `Type: message`) when the trainer raised while loading that checkpoint;
# the decision passes over it with that reason, so a requeue never loops on it.
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  REC=$OUT/.train-resume/failed/checkpoint-4
}

teardown() {
  cleanup_workdir
}

# Write a record for checkpoint-4, newer than its trainer_state.json. Arguments: LINE
record() {
  mkdir -p "${REC%/*}"
  printf '%s\n' "$1" >"$REC"
  touch -d '+1 minute' "$REC"
}

@test "a failed-load record: latest passes over that checkpoint with the recorded reason" {
  record 'RuntimeError: Error(s) in loading state_dict for Qwen2ForCausalLM: size mismatch'
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].path')" "$OUT/checkpoint-4"
  assert_equal "$(field '.skipped[0].reason')" \
    "the trainer failed to load it: RuntimeError: Error(s) in loading state_dict for Qwen2ForCausalLM: size mismatch (recorded in $REC; --forget-failed clears it)"
  assert_stderr --partial "⚠️ skipping $OUT/checkpoint-4: the trainer failed to load it: RuntimeError"
}

@test "a failed-load record older than the checkpoint's trainer_state.json is ignored (saved again since)" {
  record 'OSError: truncated'
  touch -d '+2 minutes' "$OUT/checkpoint-4/trainer_state.json"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "a checkpoint named explicitly with a failed-load record is an error with the reason" {
  record 'OSError: Unable to load weights from pytorch checkpoint file'
  run -1 --separate-stderr "$TR" -o "$OUT" -c "$OUT/checkpoint-4" --explain
  assert_stderr --partial "checkpoint $OUT/checkpoint-4 (from --checkpoint) cannot be used: the trainer failed to load it: OSError: Unable to load weights"
}

@test "every checkpoint with a failed-load record: exit 1 with the reasons" {
  record 'OSError: four'
  printf 'OSError: two\n' >"$OUT/.train-resume/failed/checkpoint-2"
  touch -d '+1 minute' "$OUT/.train-resume/failed/checkpoint-2"
  run -1 --separate-stderr "$TR" -o "$OUT" --explain
  assert_stderr --partial "  - $OUT/checkpoint-2: the trainer failed to load it: OSError: two"
  assert_stderr --partial '--checkpoint none'
}

@test "--forget-failed removes the records, and the checkpoint is chosen again" {
  record 'OSError: truncated'
  run -0 --separate-stderr "$TR" -o "$OUT" --forget-failed -- true
  assert_stderr --partial "🧹 forgot the failed-load record $REC"
  assert_stderr --partial "resuming from checkpoint: $OUT/checkpoint-4"
  assert [ ! -e "$REC" ]
}

@test "--forget-failed with --explain removes nothing and ignores the records in that decision" {
  record 'OSError: truncated'
  explain -o "$OUT" --forget-failed
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  assert_stderr --partial "would forget the failed-load record $REC"
  assert [ -e "$REC" ]
}

@test "a hostile failed-load record (control bytes, many lines, huge) is shown in one clean line" {
  mkdir -p "${REC%/*}"
  # shellcheck disable=SC2016 # $(...) is hostile data, never expanded
  {
    printf 'E: a\033[31mred\rline\n$(touch pwned)\n'
    head -c 100000 /dev/zero | tr '\0' x
  } >"$REC"
  touch -d '+1 minute' "$REC"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" \
    "the trainer failed to load it: E: a?[31mred?line (recorded in $REC; --forget-failed clears it)"
  assert_equal "$(find "$WORK" -name 'pwned*' | wc -l)" 0
}

@test "a failed-load record that is a directory is not a record" {
  mkdir -p "$REC"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}
