#!/usr/bin/env bats
# Saved means saved by every rank: train_resume's callback records a save
# (OUTPUT_DIR/.train-resume/saved/checkpoint-N) only after every rank has finished
# it, so a checkpoint newer than the oldest recorded one that has no record of its own
# is a save that did not finish (lib/wandb_resume/checkpoint.bash _unfinished_save).
# The kill itself, between rank 0's trainer_state.json and the end of another rank's
# save, is made real in tests/python/test_job.py.
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
}

# Record CHECKPOINT as saved, with the callback's own code. Arguments: CHECKPOINT
record_save() {
  PYTHONPATH=$ROOT python3 -c 'import sys; from train_resume.callback import record_save
record_save(sys.argv[1])' "$1"
}

@test "a checkpoint newer than the recorded saves, without a record of its own, did not finish: passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  make_state "$OUT/checkpoint-6" 6
  record_save "$OUT/checkpoint-2"
  record_save "$OUT/checkpoint-4"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  assert_equal "$(field '.skipped[0].path')" "$OUT/checkpoint-6"
  assert_equal "$(field '.skipped[0].reason')" "its save did not finish on every rank: no save record, though the saves from checkpoint-2 on are recorded (.train-resume/saved/; the callback records a save once every rank has finished it): killed after rank 0 wrote trainer_state.json, before another rank (or the trainer's own extras, such as TRL's entropy_ctrl_state.json) had finished"
}

@test "checkpoints from before the records began keep today's checks" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  make_state "$OUT/checkpoint-6" 6
  record_save "$OUT/checkpoint-4"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  # checkpoint-4 gone (its record left behind): checkpoint-6 still did not finish,
  # checkpoint-2, older than every record, is judged by its files.
  rm -r "$OUT/checkpoint-4"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '[.skipped[].path] | join(" ")')" "$OUT/checkpoint-6"
}

@test "an output dir without save records (a run without the callback) keeps today's checks" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  assert_equal "$(field '.skipped | length')" 0
}

@test "named explicitly, a save that did not finish is an error with the reason" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  record_save "$OUT/checkpoint-2"
  explain -o "$OUT" -c "$OUT/checkpoint-4"
  assert_failure 1
  assert_stderr --partial "checkpoint $OUT/checkpoint-4 (from --checkpoint) cannot be used: its save did not finish on every rank"
}

@test "none complete because the only new save did not finish: an error, nothing run" {
  make_state "$OUT/checkpoint-4" 4
  mkdir -p "$OUT/.train-resume/saved"
  : >"$OUT/.train-resume/saved/checkpoint-2"
  run -1 --separate-stderr "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial "1 checkpoint-N folder(s) in $OUT, none complete:"
  assert_stderr --partial "$OUT/checkpoint-4: its save did not finish on every rank"
  assert [ ! -e "$WORK/ran" ]
}
