#!/usr/bin/env bats
# Which W&B run id: run folders, trainer_state.json, WANDB_RUN_ID; their order and
# W&B's rules for ids.
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
}

@test "finds the run id in the W&B run folders of a real TRL run" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  explain -o "$OUT" --sources wandb-dir
  assert_equal "$(field .run_id)" "$(fixture_state_id trl-run checkpoint-4)"
  assert_equal "$(field .run_id_source)" wandb-dir
  assert_stderr --partial "🔍 looking for the W&B run id in $OUT/wandb"
  assert_stderr --partial "✅ found W&B run id: $(field .run_id) (source wandb-dir: $OUT/wandb/offline-run-"
}

@test "looks in the checkpoint's own wandb folder first" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  make_run "$OUT/checkpoint-4/wandb" run-20260101_000000-inckpt inckpt
  explain -o "$OUT"
  assert_equal "$(field .run_id)" inckpt
  assert_stderr --partial "found W&B run id: inckpt (source checkpoint-wandb: $OUT/checkpoint-4/wandb/run-20260101_000000-inckpt)"
}

@test "finds the run id in \$WANDB_DIR/wandb" {
  make_state "$OUT/checkpoint-2" 2
  make_run "$WORK/elsewhere/wandb" offline-run-20260101_000000-fromenvdir fromenvdir
  WANDB_DIR=$WORK/elsewhere explain -o "$OUT"
  assert_equal "$(field .run_id)" fromenvdir
}

@test "finds the run id in --wandb-dir DIR/wandb" {
  make_state "$OUT/checkpoint-2" 2
  make_run "$WORK/w dir/wandb" run-20260101_000000-fromflag fromflag
  explain -o "$OUT" --wandb-dir "$WORK/w dir"
  assert_equal "$(field .run_id)" fromflag
}

@test "takes the id from the .wandb file name, dashes and all" {
  make_state "$OUT/checkpoint-2" 2
  cp -R "$FIXTURES/wandb-runs/wandb" "$OUT/wandb"
  explain -o "$OUT"
  assert_equal "$(field .run_id)" newest-id-9
  assert_stderr --regexp "👀 also seen in $OUT/wandb: 3 other run folder\(s\), among them: offline-run-[0-9_]+-older1 offline-run-[0-9_]+-same-second offline-run-[0-9_]+-same-second-1"
}

@test "prefers the run that latest-run points to" {
  make_state "$OUT/checkpoint-2" 2
  cp -R "$FIXTURES/wandb-runs/wandb" "$OUT/wandb"
  ln -sfn "$(cd "$OUT/wandb" && echo offline-run-*-older1)" "$OUT/wandb/latest-run"
  explain -o "$OUT"
  assert_equal "$(field .run_id)" older1
}

@test "takes the newest folder by time when latest-run is dangling" {
  make_state "$OUT/checkpoint-2" 2
  cp -R "$FIXTURES/wandb-runs/wandb" "$OUT/wandb"
  ln -sfn offline-run-gone "$OUT/wandb/latest-run"
  explain -o "$OUT"
  assert_equal "$(field .run_id)" newest-id-9
  assert_equal "$(field '.warnings[0]')" \
    "$OUT/wandb/latest-run leads nowhere (dangling); using the newest run folder instead"
}

@test "takes the newest folder by time when latest-run points outside" {
  make_state "$OUT/checkpoint-2" 2
  cp -R "$FIXTURES/wandb-runs/wandb" "$OUT/wandb"
  make_run "$WORK/other" offline-run-20260101_000000-outside outside
  ln -sfn "$WORK/other/offline-run-20260101_000000-outside" "$OUT/wandb/latest-run"
  explain -o "$OUT"
  assert_equal "$(field .run_id)" newest-id-9
  assert_equal "$(field '.warnings[0]')" \
    "$OUT/wandb/latest-run points outside the run folders of $OUT/wandb; using the newest run folder instead"
}

@test "counts a folder with W&B's -1 suffix as newer than the plain one" {
  make_state "$OUT/checkpoint-2" 2
  cp -R "$FIXTURES/wandb-runs/wandb" "$OUT/wandb"
  rm -r "$OUT/wandb/latest-run" "$OUT"/wandb/offline-run-*-newest-id-9
  explain -o "$OUT"
  assert_equal "$(field .run_id)" same-second
  assert_stderr --regexp "found W&B run id: same-second \(source wandb-dir: $OUT/wandb/offline-run-[0-9_]+-same-second-1\)"
}

@test "skips a run folder that holds no .wandb file" {
  make_state "$OUT/checkpoint-2" 2
  make_run "$OUT/wandb" run-20260101_000000-good good
  mkdir -p "$OUT/wandb/run-20260102_000000-empty"
  explain -o "$OUT"
  assert_equal "$(field .run_id)" good
  assert_equal "$(field '.skipped[0].path')" "$OUT/wandb/run-20260102_000000-empty"
  assert_equal "$(field '.skipped[0].reason')" 'no run-<id>.wandb file inside (the run never started writing?)'
}

@test "of two .wandb files in a folder takes the one its name carries" {
  make_state "$OUT/checkpoint-2" 2
  make_run "$OUT/wandb" run-20260101_000000-right right
  : >"$OUT/wandb/run-20260101_000000-right/run-wrong.wandb"
  explain -o "$OUT"
  assert_equal "$(field .run_id)" right
}

@test "skips a folder with two .wandb files that its name does not single out" {
  make_state "$OUT/checkpoint-2" 2 '.stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "st"}}'
  make_run "$OUT/wandb" run-20260101_000000-zzz one
  : >"$OUT/wandb/run-20260101_000000-zzz/run-two.wandb"
  explain -o "$OUT"
  assert_equal "$(field .run_id)" st
  assert_equal "$(field '.skipped[0].reason')" '2 run-<id>.wandb files and none that the folder name singles out'
}

@test "skips a run id that W&B would reject and goes on to the next source" {
  make_state "$OUT/checkpoint-2" 2 '.stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "ok-id"}}'
  make_run "$OUT/wandb" "run-20260101_000000-a;b" "a;b"
  explain -o "$OUT"
  assert_equal "$(field .run_id)" ok-id
  assert_equal "$(field .run_id_source)" trainer-state
  assert_equal "$(field '.skipped[0].reason')" "run id contains one of the characters W&B forbids (:;,#?/')"
}

@test "reads the run id the callback stored in a real TRL checkpoint when no W&B folder is kept" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  rm -r "$OUT/wandb"
  explain -o "$OUT"
  assert_equal "$(field .run_id)" "$(fixture_state_id trl-run checkpoint-4)"
  assert_equal "$(field .run_id_source)" trainer-state
  assert_stderr --partial "(source trainer-state: $OUT/checkpoint-4/trainer_state.json stateful_callbacks.WandbResumeCallback.args.wandb_run_id)"
}

@test "reads a wandb_run_id stored by any stateful callback" {
  make_state "$OUT/checkpoint-2" 2 '.stateful_callbacks.MyCallback = {args: {wandb_run_id: "mine"}}'
  explain -o "$OUT"
  assert_equal "$(field .run_id)" mine
}

@test "reads a top-level wandb_run_id from trainer_state.json" {
  make_state "$OUT/checkpoint-2" 2 '.wandb_run_id = "top-level"'
  explain -o "$OUT"
  assert_equal "$(field .run_id)" top-level
  assert_equal "$(field .run_id_source)" trainer-state
}

@test "skips a wandb_run_id that is not a string" {
  make_state "$OUT/checkpoint-2" 2 '.wandb_run_id = 12345'
  explain -o "$OUT"
  assert_equal "$(field .run_id)" null
  assert_equal "$(field '.skipped[0].reason')" 'wandb_run_id is a number, not a string: 12345'
}

@test "uses an existing WANDB_RUN_ID when no other source has one" {
  cp -R "$FIXTURES/plain-run" "$OUT"
  rm -r "$OUT/wandb"
  WANDB_RUN_ID=from-env explain -o "$OUT"
  assert_equal "$(field .run_id)" from-env
  assert_equal "$(field .run_id_source)" env
}

@test "the checkpoint's stored id beats OUTPUT_DIR/wandb (an eval run there does not take over), with a warning" {
  make_state "$OUT/checkpoint-2" 2 '.wandb_run_id = "stateid"'
  make_run "$OUT/wandb" run-20260101_000000-evalid evalid
  explain -o "$OUT"
  assert_equal "$(field .run_id)" stateid
  assert_equal "$(field .run_id_source)" trainer-state
  assert_equal "$(field '.warnings[0]')" \
    "run ids disagree: stateid (trainer-state: $OUT/checkpoint-2/trainer_state.json wandb_run_id) and evalid (wandb-dir: $OUT/wandb/run-20260101_000000-evalid); following the order: stateid"
}

@test "CHECKPOINT/wandb beats the id stored in the checkpoint's trainer_state.json" {
  make_state "$OUT/checkpoint-2" 2 '.wandb_run_id = "stateid"'
  make_run "$OUT/checkpoint-2/wandb" run-20260101_000000-ckptid ckptid
  explain -o "$OUT"
  assert_equal "$(field .run_id)" ckptid
  assert_equal "$(field .run_id_source)" checkpoint-wandb
}

@test "the stored id beats --wandb-dir and \$WANDB_DIR/wandb, which beat WANDB_RUN_ID" {
  make_state "$OUT/checkpoint-2" 2 '.wandb_run_id = "stateid"'
  make_run "$WORK/opt/wandb" run-20260101_000000-optid optid
  make_run "$WORK/env/wandb" run-20260101_000000-envdirid envdirid
  WANDB_DIR=$WORK/env WANDB_RUN_ID=envid explain -o "$OUT" --wandb-dir "$WORK/opt"
  assert_equal "$(field .run_id)" stateid
  run jq -r '.warnings[]' <<<"$output"
  assert_line --index 0 --partial 'and optid (wandb-dir:'
  assert_line --index 1 --partial 'and envid (env: WANDB_RUN_ID)'
  rm "$OUT/checkpoint-2/trainer_state.json"
  make_state "$OUT/checkpoint-2" 2
  WANDB_DIR=$WORK/env WANDB_RUN_ID=envid explain -o "$OUT" --wandb-dir "$WORK/opt"
  assert_equal "$(field .run_id)" optid
  assert_equal "$(field .run_id_source)" wandb-dir
}

@test "an older source list without checkpoint-wandb still looks in CHECKPOINT/wandb first" {
  make_state "$OUT/checkpoint-2" 2 '.wandb_run_id = "stateid"'
  make_run "$OUT/checkpoint-2/wandb" run-20260101_000000-ckptid ckptid
  make_run "$OUT/wandb" run-20260101_000000-dirid dirid
  WANDB_RESUME_SOURCES=wandb-dir,trainer-state,env explain -o "$OUT"
  assert_equal "$(field .run_id)" ckptid
  assert_equal "$(field .run_id_source)" wandb-dir
}

@test "WANDB_RESUME_SOURCES changes the order of the sources" {
  make_state "$OUT/checkpoint-2" 2 '.wandb_run_id = "stateid"'
  make_run "$OUT/wandb" run-20260101_000000-dirid dirid
  WANDB_RESUME_SOURCES=wandb-dir,trainer-state explain -o "$OUT"
  assert_equal "$(field .run_id)" dirid
  assert_equal "$(field .run_id_source)" wandb-dir
}

@test "--sources leaves out the sources it does not name" {
  make_state "$OUT/checkpoint-2" 2
  make_run "$OUT/wandb" run-20260101_000000-dirid dirid
  WANDB_RUN_ID=envid explain -o "$OUT" --sources env
  assert_equal "$(field .run_id)" envid
  refute_stderr --partial "looking for the W&B run id in $OUT/wandb"
}

@test "an unknown source is a usage error" {
  run -2 --separate-stderr "$TR" -o "$OUT" --sources wandb-dir,cloud --explain
  assert_stderr --partial 'unknown run id source: cloud (known: checkpoint-wandb, trainer-state, wandb-dir, env)'
}

@test "resuming without any run id says so and goes on with WANDB_RESUME=allow" {
  cp -R "$FIXTURES/plain-run" "$OUT"
  rm -r "$OUT/wandb"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .mode)" resume
  assert_equal "$(field .run_id)" null
  assert_equal "$(field .wandb_resume)" allow
  assert_stderr --partial "⚠️ no W&B run id found (searched: $OUT/checkpoint-4/wandb, $OUT/checkpoint-4/trainer_state.json, $OUT/wandb, WANDB_RUN_ID); continuing with WANDB_RESUME=allow"
}

@test "wandb_resume::run_id_from_wandb_dir prints the id of a real run folder" {
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
  run -0 --separate-stderr wandb_resume::run_id_from_wandb_dir "$FIXTURES/trl-run/wandb"
  assert_output "$(fixture_state_id trl-run checkpoint-4)"
}

@test "wandb_resume::run_id_from_trainer_state prints the id of a real checkpoint" {
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
  run -0 --separate-stderr wandb_resume::run_id_from_trainer_state "$FIXTURES/trl-run/checkpoint-2/trainer_state.json"
  assert_output "$(fixture_state_id trl-run checkpoint-2)"
  run -1 --separate-stderr wandb_resume::run_id_from_trainer_state "$FIXTURES/plain-run/checkpoint-2/trainer_state.json"
  assert_output ''
}

@test "wandb_resume::latest_checkpoint prints the newest complete checkpoint" {
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
  run -0 --separate-stderr wandb_resume::latest_checkpoint "$FIXTURES/trl-run"
  assert_output "$FIXTURES/trl-run/checkpoint-4"
}

@test "accepts run ids that follow W&B's rules" {
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
  local id
  for id in abc123 with-dash a.b_c "$(printf 'x%.0s' {1..227})" 'in side' 'üñí'; do
    run -0 wandb_resume::check_run_id "$id"
    assert_output ''
  done
}

@test "rejects run ids that break W&B's rules, saying why" {
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
  run -1 wandb_resume::check_run_id ''
  assert_output 'empty run id'
  run -1 wandb_resume::check_run_id ' lead'
  assert_output 'run id has leading or trailing space'
  run -1 wandb_resume::check_run_id 'trail '
  assert_output 'run id has leading or trailing space'
  run -1 wandb_resume::check_run_id "$(printf 'x%.0s' {1..228})"
  assert_output 'run id is 228 bytes long (W&B allows at most 227)'
  run -1 wandb_resume::check_run_id $'new\nline'
  assert_output 'run id contains control characters'
  local c
  for c in : ';' ',' '#' '?' / "'"; do
    run -1 wandb_resume::check_run_id "a${c}b"
    assert_output "run id contains one of the characters W&B forbids (:;,#?/')"
  done
}

@test "--wandb-dir may name the wandb folder itself" {
  make_state "$OUT/checkpoint-2" 2
  make_run "$WORK/logs/wandb" run-20260101_000000-itself itself
  explain -o "$OUT" --wandb-dir "$WORK/logs/wandb"
  assert_equal "$(field .run_id)" itself
}

@test "searches a wandb folder once when WANDB_DIR is the output dir" {
  make_state "$OUT/checkpoint-2" 2
  WANDB_DIR=$OUT explain -o "$OUT"
  run grep -c "looking for the W&B run id in $OUT/wandb" <<<"$stderr"
  assert_output 1
}

@test "an invalid WANDB_RUN_ID is skipped as a source" {
  make_state "$OUT/checkpoint-2" 2
  WANDB_RUN_ID='bad/id' explain -o "$OUT"
  assert_success
  assert_equal "$(field .run_id)" null
  assert_equal "$(field '.skipped[0].path')" WANDB_RUN_ID
  assert_equal "$(field '.skipped[0].reason')" "run id contains one of the characters W&B forbids (:;,#?/')"
}
