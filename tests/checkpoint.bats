#!/usr/bin/env bats
# Which checkpoint: explicit choices, the newest complete one, or a new run.
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
}

teardown() {
  cleanup_workdir
}

@test "starts a new run when the output dir holds no checkpoint" {
  mkdir -p "$OUT"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .mode)" new
  assert_equal "$(field .checkpoint)" null
  assert_equal "$(field .wandb_resume)" allow
  assert_stderr --partial '🆕 new training run (no checkpoint in'
}

@test "starts a new run when the output dir does not exist yet" {
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .mode)" new
  assert_stderr --partial 'does not exist yet'
}

@test "resumes a real TRL run from its newest checkpoint" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .mode)" resume
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  assert_equal "$(field .run_id)" "$(fixture_state_id trl-run checkpoint-4)"
  assert_equal "$(field .wandb_resume)" must
  assert_stderr --partial "🔄 resuming from checkpoint: $OUT/checkpoint-4"
}

@test "gives the checkpoint as an absolute path when the output dir is relative" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  explain -o out/
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "orders checkpoints by number, not by name" {
  make_state "$OUT/checkpoint-9" 9
  make_state "$OUT/checkpoint-10" 10
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-10"
}

@test "the newest among names of many lengths, and the next newest when it is not complete" {
  local n
  for n in 5 9 10 99 100 999; do make_state "$OUT/checkpoint-$n" "$n"; done
  # Newer by name or length, but not checkpoint-<number>: never taken.
  make_state "$OUT/checkpoint-1000x" 1000
  make_state "$OUT/checkpoint-01000" 1000
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-999"
  # The newest (found past the last name by glob: 999 -> 1000 -> 10000) not complete:
  # the next newest, by number.
  mkdir "$OUT/checkpoint-1000" "$OUT/checkpoint-10000"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-999"
  assert_equal "$(field '[.skipped[].path | sub(".*/"; "")] | join(" ")')" 'checkpoint-01000 checkpoint-1000x checkpoint-10000 checkpoint-1000'
}

@test "picks the newest complete checkpoint when the newest has no trainer_state.json" {
  make_state "$OUT/checkpoint-2" 2
  mkdir -p "$OUT/checkpoint-4"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].path')" "$OUT/checkpoint-4"
  assert_equal "$(field '.skipped[0].reason')" \
    'trainer_state.json missing (HF writes it last: the save was probably interrupted)'
  assert_stderr --partial "⚠️ skipping $OUT/checkpoint-4: trainer_state.json missing"
}

@test "picks the newest complete checkpoint when the newest trainer_state.json is truncated" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  truncate -s 150 "$OUT/checkpoint-4/trainer_state.json"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason' | cut -c1-27)" 'not valid JSON (truncated?)'
}

@test "passes over a checkpoint whose global_step is not its number" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 6
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" \
    'global_step is 6, but the folder is checkpoint-4 (a copy, or a half-written save?)'
}

@test "passes over a trainer_state.json that is JSON but not an object" {
  make_state "$OUT/checkpoint-2" 2
  mkdir -p "$OUT/checkpoint-4"
  echo '[4]' >"$OUT/checkpoint-4/trainer_state.json"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" 'JSON but not an object (array)'
}

@test "passes over a trainer_state.json whose global_step is a string" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4 '.global_step = "4"'
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" 'global_step is a string, not a number'
}

@test "checkpoints present but none complete: exit 1 with each reason, nothing run" {
  mkdir -p "$OUT/checkpoint-2" "$OUT/checkpoint-4"
  run -1 --separate-stderr "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_output ''
  assert_stderr --partial "❌ error: 2 checkpoint-N folder(s) in $OUT, none complete:"
  assert_stderr --partial "  - $OUT/checkpoint-4: trainer_state.json missing"
  assert_stderr --partial "  - $OUT/checkpoint-2: trainer_state.json missing"
  assert_stderr --partial "train-resume --checkpoint none -o $OUT"
  assert [ ! -e "$WORK/ran" ]
}

@test "checkpoints present but none complete: --checkpoint none starts over on purpose" {
  mkdir -p "$OUT/checkpoint-2"
  explain -o "$OUT" --checkpoint none
  assert_success
  assert_equal "$(field .mode)" new
}

@test "skips checkpoint names that are not numbers or have a leading zero" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-best" 8
  make_state "$OUT/checkpoint-07" 7
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  run jq -r '.skipped[] | .reason' <<<"$output"
  assert_line 'step number with a leading zero (HF never writes one)'
  assert_line 'not named checkpoint-<number>'
}

@test "resumes from a checkpoint named with --checkpoint" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  explain -o "$OUT" --checkpoint "$OUT/checkpoint-2"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_stderr --partial '(chosen by --checkpoint)'
}

@test "fails, naming the path, when the --checkpoint given does not exist" {
  mkdir -p "$OUT"
  run -1 --separate-stderr "$TR" -o "$OUT" --checkpoint "$OUT/checkpoint-9" -- touch ran
  assert_output ''
  assert_stderr --partial "❌ error: checkpoint $OUT/checkpoint-9 (from --checkpoint) cannot be used: no such file or directory"
  assert [ ! -e ran ]
}

@test "fails, and never falls back, when the --checkpoint given is incomplete" {
  make_state "$OUT/checkpoint-2" 2
  mkdir -p "$OUT/checkpoint-4"
  run -1 --separate-stderr "$TR" -o "$OUT" -c "$OUT/checkpoint-4" --explain --json
  assert_output ''
  assert_stderr --partial 'cannot be used: trainer_state.json missing'
}

@test "fails with the owner and mode when the --checkpoint given is unreadable" {
  open_workdir
  make_state "$OUT/checkpoint-2" 2
  chmod 000 "$OUT/checkpoint-2"
  run -1 --separate-stderr as_nobody "$TR" -o "$OUT" -c "$OUT/checkpoint-2" --explain
  assert_stderr --partial "checkpoint $OUT/checkpoint-2 (from --checkpoint) cannot be used: permission denied (owner root:root d---------; running as nobody)"
}

@test "fails with a permission hint when the output dir is unreadable" {
  open_workdir
  make_state "$OUT/checkpoint-2" 2
  chmod 700 "$OUT"
  run -1 --separate-stderr as_nobody "$TR" -o "$OUT" --explain
  assert_stderr --partial "cannot read output dir $OUT: permission denied (owner root:root drwx------"
}

@test "an unreadable trainer_state.json in the checkpoint it would take: exit 1 with owner, mode and user, not an older one" {
  open_workdir
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  chmod 600 "$OUT/checkpoint-4/trainer_state.json"
  run -1 --separate-stderr as_nobody "$TR" -o "$OUT" --explain --json
  assert_output ''
  assert_stderr --partial "❌ error: cannot read $OUT/checkpoint-4, the checkpoint the decision would take: trainer_state.json: permission denied (owner root:root -rw-------; running as nobody)"
  refute_stderr --partial 'resuming from'
}

@test "the newest checkpoint of another owner, mode 700: exit 1 naming owner, mode and user; nothing run" {
  open_workdir
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  chmod 700 "$OUT/checkpoint-4"
  chmod 777 "$WORK"
  run -1 --separate-stderr as_nobody "$TR" -o "$OUT" --no-lock -- touch "$WORK/ran"
  assert_stderr --partial "❌ error: cannot read $OUT/checkpoint-4, the checkpoint the decision would take: permission denied (owner root:root drwx------; running as nobody): check with ls -la, then chmod or run as the owner. Not passed over for an older one: the trainer, running as the same user, could not load it either, nor save beside it (to resume an older one on purpose: --checkpoint PATH)"
  assert [ ! -e "$WORK/ran" ]
}

@test "an unreadable checkpoint below an incomplete newest one is the one it would take: exit 1" {
  open_workdir
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  mkdir -p "$OUT/checkpoint-6"
  chmod 700 "$OUT/checkpoint-4"
  run -1 --separate-stderr as_nobody "$TR" -o "$OUT" --explain
  assert_stderr --partial "skipping $OUT/checkpoint-6: trainer_state.json missing"
  assert_stderr --partial "cannot read $OUT/checkpoint-4, the checkpoint the decision would take: permission denied (owner root:root drwx------; running as nobody)"
}

@test "an unreadable checkpoint older than the one taken is never looked at" {
  open_workdir
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  chmod 700 "$OUT/checkpoint-2"
  run -0 --separate-stderr as_nobody "$TR" -o "$OUT" --explain --json
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "--checkpoint latest is the newest complete checkpoint" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  explain -o "$OUT" --checkpoint latest
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "--checkpoint none starts a new run although checkpoints exist" {
  make_state "$OUT/checkpoint-2" 2
  explain -o "$OUT" --checkpoint none
  assert_success
  assert_equal "$(field .mode)" new
  assert_stderr --partial '🆕 new training run (--checkpoint none: checkpoints are ignored)'
}

@test "--checkpoint none beside complete checkpoints warns in one line: which ones, and what the next plain restart resumes" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-10" 10
  make_state "$OUT/checkpoint-8" 8
  mkdir -p "$OUT/checkpoint-12"
  explain -o "$OUT" --checkpoint none
  assert_success
  assert_equal "$(field .mode)" new
  local want="--checkpoint none: $OUT still holds checkpoints of an earlier run (checkpoint-12, checkpoint-10, checkpoint-8, checkpoint-2); this new run saves its checkpoint-N among them, and the next plain restart (without --checkpoint none) resumes the newest complete one, checkpoint-10 of the earlier run, until this run has saved past step 10. To keep the runs apart: a new --output-dir, or move them away"
  assert_equal "$(field '.warnings | length')" 1
  assert_equal "$(field '.warnings[0]')" "$want"
  assert_stderr --partial "⚠️ $want"$'\n'
  # Its look at the checkpoints is not the decision's: nothing skipped, no skip lines.
  assert_equal "$(field '.skipped | length')" 0
  refute_stderr --partial 'skipping'
  # What it says the next plain restart does, it does.
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-10"
}

@test "--checkpoint none beside many checkpoints names the newest five and how many more" {
  local i
  for i in 1 2 3 4 5 6 7; do make_state "$OUT/checkpoint-$i" "$i"; done
  explain -o "$OUT" --checkpoint none
  assert_equal "$(field '.warnings[0]')" "--checkpoint none: $OUT still holds checkpoints of an earlier run (checkpoint-7, checkpoint-6, checkpoint-5, checkpoint-4, checkpoint-3 and 2 more); this new run saves its checkpoint-N among them, and the next plain restart (without --checkpoint none) resumes the newest complete one, checkpoint-7 of the earlier run, until this run has saved past step 7. To keep the runs apart: a new --output-dir, or move them away"
}

@test "--checkpoint none beside checkpoints none of which is complete: no warning (the next restart is refused anyway)" {
  mkdir -p "$OUT/checkpoint-2"
  explain -o "$OUT" --checkpoint none
  assert_success
  assert_equal "$(field '.warnings | length')" 0
  refute_stderr --partial 'earlier run'
}

@test "--checkpoint none in an empty or new output dir: no warning" {
  mkdir -p "$OUT"
  explain -o "$OUT" --checkpoint none
  assert_equal "$(field '.warnings | length')" 0
  explain -o "$WORK/nothing-yet" --checkpoint none
  assert_equal "$(field '.warnings | length')" 0
}

@test "--checkpoint none beside checkpoints that cannot be checked (jq crashes on them): the warning says so, and the new run goes on" {
  make_state "$OUT/checkpoint-2" 2
  # jq is there (it is checked at every start) but crashes reading the state.
  fake_tool_on jq '--arg' 'kill -SEGV $$'
  run -0 --separate-stderr env PATH="$WORK/fakebin:$PATH" "$TR" -o "$OUT" --checkpoint none --explain
  assert_stderr --partial "⚠️ --checkpoint none: $OUT still holds checkpoint folders of an earlier run (checkpoint-2), which could not be checked (reading $OUT/checkpoint-2/trainer_state.json: jq was killed by signal 11"
  assert_stderr --partial '🆕 new training run (--checkpoint none: checkpoints are ignored)'
}

@test "RESUME_FROM_CHECKPOINT_DIR names the checkpoint" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  RESUME_FROM_CHECKPOINT_DIR=$OUT/checkpoint-2 explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_stderr --partial '(chosen by RESUME_FROM_CHECKPOINT_DIR)'
}

@test "--checkpoint wins over RESUME_FROM_CHECKPOINT_DIR" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  RESUME_FROM_CHECKPOINT_DIR=$OUT/checkpoint-2 explain -o "$OUT" -c "$OUT/checkpoint-4"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "a checkpoint given without an output dir has its parent as the output dir" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  explain -c "$OUT/checkpoint-2" --sources wandb-dir
  assert_success
  assert_equal "$(field .run_id_source)" wandb-dir
  assert_stderr --partial "📂 output dir: $OUT (the checkpoint's parent)"
}

@test "with neither an output dir nor a checkpoint it is a usage error" {
  run -2 --separate-stderr "$TR" --explain
  assert_stderr --partial 'no output dir: give --output-dir DIR'
}

@test "reads a huge trainer_state.json from its head and tail windows" {
  make_state "$OUT/checkpoint-3000" 3000 \
    '.log_history |= map(. + {pad: "0123456789012345678901234567890123456789"})
     | .stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "tail-id"}, attributes: {}}'
  (($(stat -c %s "$OUT/checkpoint-3000/trainer_state.json") > 4 * 65536))
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
  assert_equal "$(field .run_id)" tail-id
}

@test "passes over a huge trainer_state.json truncated in its log_history" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-3000" 3000
  truncate -s 100000 "$OUT/checkpoint-3000/trainer_state.json"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason' | cut -c1-27)" 'not valid JSON (truncated?)'
}

@test "passes over a trainer_state.json that a crash left padded with NUL bytes" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  truncate -s 100000 "$OUT/checkpoint-4/trainer_state.json"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" \
    'NUL bytes in trainer_state.json (a save cut short by a crash?)'
}

@test "parses the whole file when a huge trainer_state.json is not in HF's layout" {
  make_state "$OUT/checkpoint-3000" 3000
  jq -c . "$OUT/checkpoint-3000/trainer_state.json" >"$WORK/min.json"
  mv "$WORK/min.json" "$OUT/checkpoint-3000/trainer_state.json"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
}

@test "warns when free space is below the size of the checkpoint" {
  ((EUID == 0)) || skip 'needs root to mount a small tmpfs'
  mkdir -p "$OUT"
  mount -t tmpfs -o size=2m tmpfs "$OUT" || skip 'cannot mount a tmpfs here'
  # A real save (weights, optimizer, ...: about 1 MB) in 2 MB: less free than its size.
  cp -R "$FIXTURES/saves/full/checkpoint-2" "$OUT/"
  explain -o "$OUT"
  umount "$OUT"
  assert_success
  assert_equal "$(field '[.warnings[] | select(startswith("only "))] | length')" 1
  assert_stderr --partial 'the next save may fail'
}

@test "fails when the output dir is a file" {
  echo not a dir >"$OUT"
  run -1 --separate-stderr "$TR" -o "$OUT" --explain --json
  assert_output ''
  assert_stderr --partial "❌ error: output dir $OUT is not a directory"
}

@test "a checkpoint at its max_steps: the resume goes on, with a warning that the run already finished" {
  make_state "$OUT/checkpoint-6" 6 '.max_steps = 6'
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .mode)" resume
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-6"
  assert_equal "$(field '.warnings[0]')" 'checkpoint-6 is at global_step 6 of its max_steps 6: that run already finished; resuming it trains on only if the command asks for more steps'
  make_state "$OUT/checkpoint-8" 8 '.max_steps = 10'
  explain -o "$OUT"
  assert_equal "$(field '.warnings | length')" 0
}

@test "the checkpoint where the run stopped by its own rule (the end record: should_training_stop): the resume goes on, with a warning that it already finished" {
  make_state "$OUT/checkpoint-2" 2 '.max_steps = 20'
  make_state "$OUT/checkpoint-4" 4 '.max_steps = 20'
  mkdir -p "$OUT/.train-resume"
  printf '%s\n' reason=should_training_stop step=4 max_steps=20 job=x time=1 >"$OUT/.train-resume/ended"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  assert_equal "$(field '.warnings[0]')" "checkpoint-4 is where that run ended: the trainer stopped by its own rule before max_steps (step 4 of max_steps 20: should_training_stop, set by a callback such as EarlyStoppingCallback), recorded in $OUT/.train-resume/ended. It already finished: resuming it trains past its own stopping rule until that rule stops it again (EarlyStoppingCallback: at its next evaluation)"
  # Another checkpoint than the one the record names (the run went on since): nothing.
  explain -o "$OUT" -c "$OUT/checkpoint-2"
  assert_equal "$(field '.warnings | length')" 0
  # A record of a stop signal is no end of the run: nothing.
  printf '%s\n' reason=signal signal=USR1 step=4 max_steps=20 >"$OUT/.train-resume/ended"
  explain -o "$OUT"
  assert_equal "$(field '.warnings | length')" 0
}
