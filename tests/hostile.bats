#!/usr/bin/env bats
# Hostile input: every case ends in the right decision or a clear error; nothing
# from the data is executed and nothing under the output dir is written (each test
# checks both through `decide`). The caller-shell cases are in guest.bats.
# shellcheck disable=SC2016,SC2030,SC2031 # $(...) in quotes is hostile data; each @test is its own subshell
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
}

teardown() {
  cleanup_workdir
}

# Run `train-resume --explain --json ARGS` over $OUT and check that no file under
# $OUT changed and no file named pwned* appeared. Arguments: ARGS
decide() {
  local before
  before=$(snapshot "$OUT")
  run --separate-stderr "$TR" -o "$OUT" --explain --json "$@"
  assert_equal "$(snapshot "$OUT")" "$before"
  assert_equal "$(find "$WORK" "$HOME" -name 'pwned*' | wc -l)" 0
}

# A complete checkpoint-2 to fall back to, and checkpoint-4 with STATE_TEXT as its
# trainer_state.json. Arguments: STATE_TEXT
newest_state_is() {
  make_state "$OUT/checkpoint-2" 2
  mkdir -p "$OUT/checkpoint-4"
  printf '%s' "$1" >"$OUT/checkpoint-4/trainer_state.json"
}

# Expect the fall back to checkpoint-2, with checkpoint-4 skipped for REASON.
assert_fell_back() {
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].path')" "$OUT/checkpoint-4"
  assert_equal "$(field '.skipped[0].reason')" "$1"
}

# An id W&B rejects, stored in trainer_state.json: skipped, and WANDB_RUN_ID is used.
assert_state_id_rejected() {
  make_state "$OUT/checkpoint-2" 2 ".wandb_run_id = $(jq -n --arg id "$1" '$id')"
  WANDB_RUN_ID=fallback decide
  assert_success
  assert_equal "$(field .run_id)" fallback
  assert_equal "$(field '.skipped[0].reason')" "wandb_run_id: $2"
}

@test "hostile: empty trainer_state.json" {
  newest_state_is ''
  decide
  assert_fell_back 'trainer_state.json is empty'
}

@test "hostile: trainer_state.json of only white space" {
  newest_state_is $'  \n\n'
  decide
  assert_fell_back 'trainer_state.json is empty'
}

@test "hostile: trainer_state.json truncated in the middle of log_history" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4000" 4000
  truncate -s 150000 "$OUT/checkpoint-4000/trainer_state.json"
  decide
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason' | cut -c1-27)" 'not valid JSON (truncated?)'
}

@test "hostile: trainer_state.json truncated in its tail (inside stateful_callbacks)" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4000" 4000
  local f=$OUT/checkpoint-4000/trainer_state.json
  truncate -s $(($(stat -c %s "$f") - 200)) "$f"
  decide
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason' | cut -c1-27)" 'not valid JSON (truncated?)'
}

@test "hostile: a small trainer_state.json cut short by one byte" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  truncate -s -3 "$OUT/checkpoint-4/trainer_state.json"
  decide
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
}

@test "hostile: trainer_state.json that is not JSON" {
  newest_state_is 'global_step = 4'
  decide
  assert_equal "$(field '.skipped[0].reason' | cut -c1-15)" 'not valid JSON '
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
}

@test "hostile: trainer_state.json that is a JSON array" {
  newest_state_is '[{"global_step": 4}]'
  decide
  assert_fell_back 'JSON but not an object (array)'
}

@test "hostile: trainer_state.json that is a JSON string" {
  newest_state_is '"global_step"'
  decide
  assert_fell_back 'JSON but not an object (string)'
}

@test "hostile: global_step that does not match the folder" {
  newest_state_is '{"global_step": 40}'
  decide
  assert_fell_back 'global_step is 40, but the folder is checkpoint-4 (a copy, or a half-written save?)'
}

@test "hostile: global_step given as a string" {
  newest_state_is '{"global_step": "4"}'
  decide
  assert_fell_back 'global_step is a string, not a number'
}

@test "hostile: global_step null" {
  newest_state_is '{"global_step": null}'
  decide
  assert_fell_back 'global_step is a null, not a number'
}

@test "hostile: global_step not a whole number" {
  newest_state_is '{"global_step": 4.5}'
  decide
  assert_fell_back 'global_step 4.5 is not a whole number'
}

@test "hostile: global_step missing" {
  newest_state_is '{"log_history": []}'
  decide
  assert_fell_back 'global_step missing from trainer_state.json'
}

@test "hostile: trainer_state.json that is a directory" {
  make_state "$OUT/checkpoint-2" 2
  mkdir -p "$OUT/checkpoint-4/trainer_state.json"
  decide
  assert_fell_back 'trainer_state.json is not a regular file'
}

@test "hostile: trainer_state.json that is a dangling symlink" {
  make_state "$OUT/checkpoint-2" 2
  mkdir -p "$OUT/checkpoint-4"
  ln -s /nonexistent/state.json "$OUT/checkpoint-4/trainer_state.json"
  decide
  assert_fell_back 'trainer_state.json is a symlink that leads nowhere'
}

@test "hostile: a checkpoint folder that is a file" {
  make_state "$OUT/checkpoint-2" 2
  echo '{"global_step": 4}' >"$OUT/checkpoint-4"
  decide
  assert_fell_back 'not a directory'
}

@test "hostile: a checkpoint folder that is a dangling symlink" {
  make_state "$OUT/checkpoint-2" 2
  ln -s "$WORK/gone" "$OUT/checkpoint-4"
  decide
  assert_fell_back 'a symlink that leads nowhere (dangling, or a loop)'
}

@test "hostile: a checkpoint folder that is a symlink loop" {
  make_state "$OUT/checkpoint-2" 2
  ln -s checkpoint-4 "$OUT/checkpoint-4"
  decide
  assert_fell_back 'a symlink that leads nowhere (dangling, or a loop)'
}

@test "hostile: an unreadable newest checkpoint folder (mode 000, not root) is an error, not a fall back" {
  open_workdir
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  chmod 000 "$OUT/checkpoint-4"
  run -1 --separate-stderr as_nobody "$TR" -o "$OUT" --explain --json
  assert_output ''
  assert_stderr --partial "cannot read $OUT/checkpoint-4, the checkpoint the decision would take: permission denied (owner root:root d---------; running as nobody)"
}

@test "hostile: checkpoint names that are not numbers" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-abc" 4
  make_state "$OUT/checkpoint-" 4
  make_state "$OUT/checkpoint-4x" 4
  decide
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '[.skipped[].reason] | unique | join(",")')" 'not named checkpoint-<number>'
  assert_equal "$(field '.skipped | length')" 3
}

@test "hostile: checkpoint names with leading zeros" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-007" 7
  make_state "$OUT/checkpoint-00" 0
  decide
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '[.skipped[].reason] | unique | join(",")')" 'step number with a leading zero (HF never writes one)'
}

@test "hostile: a checkpoint number beyond 2^63" {
  make_state "$OUT/checkpoint-2" 2
  mkdir -p "$OUT/checkpoint-99999999999999999999"
  decide
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" 'step number too large for a global_step'
}

@test "hostile: a W&B run folder with no .wandb file" {
  make_state "$OUT/checkpoint-2" 2 '.wandb_run_id = "from-state"'
  mkdir -p "$OUT/wandb/run-20260101_000000-abc"
  decide
  assert_equal "$(field .run_id)" from-state
  assert_equal "$(field '.skipped[0].reason')" 'no run-<id>.wandb file inside (the run never started writing?)'
}

@test "hostile: a W&B run folder with two .wandb files" {
  make_state "$OUT/checkpoint-2" 2 '.wandb_run_id = "from-state"'
  make_run "$OUT/wandb" run-20260101_000000-neither one
  : >"$OUT/wandb/run-20260101_000000-neither/run-two.wandb"
  decide
  assert_equal "$(field .run_id)" from-state
}

@test "hostile: a run id with dashes" {
  make_state "$OUT/checkpoint-2" 2
  make_run "$OUT/wandb" offline-run-20260101_000000-a-b-c-1 a-b-c-1
  decide
  assert_equal "$(field .run_id)" a-b-c-1
}

@test "hostile: a W&B run folder with a -1 suffix" {
  make_state "$OUT/checkpoint-2" 2
  make_run "$OUT/wandb" run-20260101_000000-abc abc
  make_run "$OUT/wandb" run-20260101_000000-abc-1 abc
  : >"$OUT/wandb/run-20260101_000000-abc/run-abc.wandb"
  decide
  assert_equal "$(field .run_id)" abc
  assert_stderr --partial "(source wandb-dir: $OUT/wandb/run-20260101_000000-abc-1)"
}

@test "hostile: latest-run dangling" {
  make_state "$OUT/checkpoint-2" 2
  make_run "$OUT/wandb" run-20260101_000000-abc abc
  ln -s run-20990101_000000-gone "$OUT/wandb/latest-run"
  decide
  assert_equal "$(field .run_id)" abc
  assert_equal "$(field '.warnings | length')" 1
}

@test "hostile: latest-run pointing outside the wandb folder" {
  make_state "$OUT/checkpoint-2" 2
  make_run "$OUT/wandb" run-20260101_000000-abc abc
  ln -s /etc "$OUT/wandb/latest-run"
  decide
  assert_equal "$(field .run_id)" abc
  assert_equal "$(field '.warnings[0]' | cut -c1-40)" "$(cut -c1-40 <<<"$OUT/wandb/latest-run points outside")"
}

@test "hostile: a run id with a colon" {
  assert_state_id_rejected 'a:b' "run id contains one of the characters W&B forbids (:;,#?/')"
}

@test "hostile: a run id with a semicolon" {
  assert_state_id_rejected 'a;b' "run id contains one of the characters W&B forbids (:;,#?/')"
}

@test "hostile: a run id with a comma" {
  assert_state_id_rejected 'a,b' "run id contains one of the characters W&B forbids (:;,#?/')"
}

@test "hostile: a run id with a hash" {
  assert_state_id_rejected 'a#b' "run id contains one of the characters W&B forbids (:;,#?/')"
}

@test "hostile: a run id with a question mark" {
  assert_state_id_rejected 'a?b' "run id contains one of the characters W&B forbids (:;,#?/')"
}

@test "hostile: a run id with a slash" {
  assert_state_id_rejected 'a/b' "run id contains one of the characters W&B forbids (:;,#?/')"
}

@test "hostile: a run id with a quote" {
  assert_state_id_rejected "a'b" "run id contains one of the characters W&B forbids (:;,#?/')"
}

@test "hostile: a run id of 228 characters" {
  assert_state_id_rejected "$(printf 'x%.0s' {1..228})" 'run id is 228 bytes long (W&B allows at most 227)'
}

@test "hostile: a run id with a newline" {
  assert_state_id_rejected $'ab\ncd' 'run id contains control characters'
}

@test "hostile: a run id with a control byte, or a NUL escaped in the JSON" {
  assert_state_id_rejected $'ab\x01cd' 'run id contains control characters'
  make_state "$OUT/checkpoint-2" 2 '.wandb_run_id = "ab\u0000cd"'
  WANDB_RUN_ID=fallback decide
  assert_equal "$(field .run_id)" fallback
}

@test "hostile: a run id with leading space" {
  assert_state_id_rejected ' abc' 'run id has leading or trailing space'
}

@test "hostile: a run folder whose id is \$(touch pwned)" {
  make_state "$OUT/checkpoint-2" 2
  make_run "$OUT/wandb" 'run-20260101_000000-$(touch pwned)' '$(touch pwned)'
  decide
  assert_equal "$(field .run_id)" '$(touch pwned)'
  run -0 "$TR" -q -o "$OUT" -- printenv WANDB_RUN_ID
  assert_output '$(touch pwned)'
  assert_equal "$(find "$WORK" -name 'pwned*' | wc -l)" 0
}

@test "hostile: a run folder whose id has backticks" {
  make_state "$OUT/checkpoint-2" 2
  make_run "$OUT/wandb" 'run-20260101_000000-`touch pwned`' '`touch pwned`'
  decide
  assert_equal "$(field .run_id)" '`touch pwned`'
}

@test "hostile: an output dir path with spaces" {
  OUT="$WORK/a b  c"
  make_state "$OUT/checkpoint-2" 2
  decide
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
}

@test "hostile: an output dir path with a newline" {
  OUT=$WORK/$'a\nb'
  make_state "$OUT/checkpoint-2" 2
  decide
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
}

# Print the fields of the --json in $output, each as bytes again (os.fsencode of what
# Python's json.loads gives; the output must also be strict UTF-8), one per line.
# Arguments: PYTHON_EXPRESSIONS over d (the parsed object)
json_bytes() {
  python3 -c 'import json, os, sys
d = json.loads(sys.stdin.buffer.read().decode("utf-8"))
for e in sys.argv[1:]:
    sys.stdout.buffer.write(os.fsencode(eval(e)) + b"\n")' "$@" <<<"$output"
}

@test "hostile: a path with a byte that is not UTF-8 (0xE9): --json is valid JSON that gives the path bytes back" {
  OUT=$WORK/caf$'\xe9 \xc3\xa9'
  make_state "$OUT/checkpoint-2" 2
  mkdir -p "$OUT/checkpoint-4"
  decide
  assert_success
  assert_output --partial '/caf\udce9 é/checkpoint-2"'
  run -0 json_bytes 'd["checkpoint"]' 'd["skipped"][0]["path"]'
  assert_output "$OUT/checkpoint-2"$'\n'"$OUT/checkpoint-4"
}

@test "hostile: bytes that are not valid UTF-8 in --json, each escaped as Python's os.fsdecode does" {
  # A lone continuation byte, a cut sequence, an overlong form, an encoded
  # surrogate, a code point above U+10FFFF, 0xFF; then valid 2-, 3- and 4-byte ones.
  OUT=$WORK/$'x\x80 \xe2\x82 \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xff \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \x7f'
  make_state "$OUT/checkpoint-2" 2
  decide
  assert_success
  assert_output --partial '/x\udc80 \udce2\udc82 \udcc0\udcaf \udced\udca0\udc80 \udcf4\udc90\udc80\udc80 \udcff é€😀 '$'\x7f''/checkpoint-2"'
  run -0 json_bytes 'd["checkpoint"]'
  assert_output "$OUT/checkpoint-2"
}

@test "hostile: an output dir path with a star" {
  OUT="$WORK/*"
  make_state "$OUT/checkpoint-2" 2
  make_state "$WORK/decoy/checkpoint-9" 9
  decide
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
}

@test "hostile: an output dir path that starts with a dash" {
  mkdir -p -- "$WORK/-rf"
  make_state "$WORK/-rf/checkpoint-2" 2
  OUT=$WORK/-rf
  cd "$WORK"
  run -0 --separate-stderr "$TR" --output-dir -rf --explain --json
  assert_equal "$(field .checkpoint)" "$WORK/-rf/checkpoint-2"
}

@test "hostile: an output dir path with \$(touch pwned)" {
  OUT="$WORK/\$(touch pwned)"
  make_state "$OUT/checkpoint-2" 2
  decide
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
}

@test "hostile: 10,000 checkpoints and 10,000 run folders" {
  local i
  mkdir -p "$OUT/wandb"
  for ((i = 1; i <= 10000; i++)); do
    mkdir "$OUT/checkpoint-$i" "$OUT/wandb/run-20260101_000000-id$i"
  done
  make_state "$OUT/checkpoint-9999" 9999
  : >"$OUT/wandb/run-20260101_000000-id9999/run-id9999.wandb"
  decide
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-9999"
  assert_equal "$(field '.skipped[0].path')" "$OUT/checkpoint-10000"
  assert_equal "$(field .run_id)" id9999
}

@test "hostile: an explicit checkpoint named latest is the keyword, ./latest the folder" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$WORK/latest" 7
  decide --checkpoint ./latest
  assert_success
  assert_equal "$(field .checkpoint)" "$WORK/latest"
}
