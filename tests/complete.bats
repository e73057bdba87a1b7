#!/usr/bin/env bats
# What makes a checkpoint complete: a trainer_state.json that a full JSON parse
# accepts (the fast path never answers otherwise), and failures of our own tools
# (jq, grep) are errors, never "damaged checkpoint".
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
}

teardown() {
  cleanup_workdir
}

# A huge trainer_state.json in HF's layout (over the 64 KiB tail window).
# Arguments: DIR STEP [JQ_FILTER]
make_huge_state() {
  make_state "$1" "$2" '.log_history |= map(. + {pad: "0123456789012345678901234567890123456789"})'"${3:+ | $3}"
}

# Record CHECKPOINT's trainer_state.json as just saved, the way a run does: this
# calls train_resume's callback code that writes the record after each save
# (OUTPUT_DIR/.train-resume/saved/NAME). Arguments: CHECKPOINT
record_save() {
  PYTHONPATH=$ROOT python3 -c 'import sys; from train_resume.callback import record_save
record_save(sys.argv[1])' "$1"
  [[ -f ${1%/*}/.train-resume/saved/${1##*/} ]]
}

# Put printable garbage into the middle of a huge state FILE, in place and of the
# same length: `"step": 1500` (a key of log_history's row 1500) becomes `GARBAGE!!!!!`.
# Arguments: FILE
garble_middle() {
  local at
  at=$(grep -a -b -o -F '"step": 1500' "$1") && at=${at%%:*}
  printf 'GARBAGE!!!!!' | dd of="$1" bs=1 seek="$at" conv=notrunc status=none
}

# A jq on PATH that behaves as given (fault injection: the real jq cannot be made
# to crash on demand). Arguments: SHELL_CODE
fake_jq() {
  mkdir -p "$WORK/fakebin"
  printf '#!/bin/bash\n%s\n' "$1" >"$WORK/fakebin/jq"
  chmod +x "$WORK/fakebin/jq"
}

@test "printable garbage in the middle of a huge trainer_state.json, no save record: a full parse passes it over" {
  make_state "$OUT/checkpoint-2" 2
  make_huge_state "$OUT/checkpoint-3000" 3000
  garble_middle "$OUT/checkpoint-3000/trainer_state.json"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_regex "$(field '.skipped[0].reason')" '^not valid JSON \(truncated\?\): '
}

@test "a huge trainer_state.json changed after its save record: a full parse passes the garbage over" {
  make_state "$OUT/checkpoint-2" 2
  make_huge_state "$OUT/checkpoint-3000" 3000
  record_save "$OUT/checkpoint-3000"
  sleep 0.01
  garble_middle "$OUT/checkpoint-3000/trainer_state.json"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].path')" "$OUT/checkpoint-3000"
  assert_regex "$(field '.skipped[0].reason')" '^not valid JSON'
}

@test "a huge trainer_state.json as its save record says: only its ends are read" {
  make_huge_state "$OUT/checkpoint-3000" 3000 '.stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "saved-id"}, attributes: {}}'
  # Garbage written before the record: the record vouches for the file, so the
  # middle is not read (what makes the fast path fast; a real save is json.dumps).
  garble_middle "$OUT/checkpoint-3000/trainer_state.json"
  record_save "$OUT/checkpoint-3000"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
  assert_equal "$(field .run_id)" saved-id
  # The same file under another output dir (a copy: new inode) has no record: parsed whole.
  cp -R "$OUT" "$WORK/copy"
  explain -o "$WORK/copy"
  assert_failure 1
  assert_stderr --partial 'not valid JSON'
}

@test "a save record of another file (size, inode or times differ): parsed whole" {
  make_state "$OUT/checkpoint-2" 2
  make_huge_state "$OUT/checkpoint-3000" 3000
  record_save "$OUT/checkpoint-3000"
  local rec=$OUT/.train-resume/saved/checkpoint-3000
  garble_middle "$OUT/checkpoint-3000/trainer_state.json"
  # A record that is garbage, or empty, or names a directory: never trusted.
  for content in 'x y z' '' "$(cat "$rec") extra"; do
    printf '%s\n' "$content" >"$rec"
    explain -o "$OUT"
    assert_success
    assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  done
}

@test "the ends of a recorded huge state give what a full parse gives: run id, global_step" {
  make_huge_state "$OUT/checkpoint-3000" 3000 '.stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "ends-id"}, attributes: {}}'
  explain -o "$OUT"
  assert_success
  local whole=$output
  record_save "$OUT/checkpoint-3000"
  explain -o "$OUT"
  assert_success
  assert_equal "$output" "$whole"
  assert_equal "$(field .run_id)" ends-id
}

@test "a block of NUL bytes in the middle of a huge trainer_state.json: passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_huge_state "$OUT/checkpoint-3000" 3000
  dd if=/dev/zero of="$OUT/checkpoint-3000/trainer_state.json" bs=4096 seek=20 count=4 conv=notrunc status=none
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" 'NUL bytes in trainer_state.json (a save cut short by a crash?)'
}

@test "a 2 GB sparse trainer_state.json (all NUL) is passed over in bounded memory" {
  make_state "$OUT/checkpoint-2" 2
  mkdir -p "$OUT/checkpoint-4"
  truncate -s 2G "$OUT/checkpoint-4/trainer_state.json"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" 'NUL bytes in trainer_state.json (a save cut short by a crash?)'
}

@test "a UTF-8 byte order mark: passed over (Python's json refuses it), small or huge" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  make_huge_state "$OUT/checkpoint-3000" 3000
  local f
  for f in "$OUT/checkpoint-4/trainer_state.json" "$OUT/checkpoint-3000/trainer_state.json"; do
    {
      printf '\xef\xbb\xbf'
      cat "$f"
    } >"$WORK/bom" && mv "$WORK/bom" "$f"
  done
  record_save "$OUT/checkpoint-3000" # the ends are read: the BOM is still seen
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '[.skipped[].reason] | unique | length')" 1
  assert_equal "$(field '.skipped[0].reason')" "trainer_state.json starts with a UTF-8 byte order mark (Python's json refuses it)"
}

@test "bytes that are not UTF-8 (which jq reads as U+FFFD): passed over, small or huge" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4 '.trial_name = "caf\u00e9"'
  make_state "$OUT/checkpoint-6" 6
  make_huge_state "$OUT/checkpoint-3000" 3000
  local f
  for f in "$OUT/checkpoint-6/trainer_state.json" "$OUT/checkpoint-3000/trainer_state.json"; do
    sed -i 's/"trial_name": null/"trial_name": "caf\xe9"/' "$f"
    grep -q $'caf\xe9' "$f"
  done
  explain -o "$OUT"
  assert_success
  # café in UTF-8 is fine (the trainer reads it); a lone Latin-1 byte is not.
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  assert_equal "$(jq -c '[.skipped[].reason] | unique' <<<"$output")" '["trainer_state.json is not valid UTF-8 (the trainer could not read it)"]'
  assert_equal "$(field '.skipped | length')" 2
}

@test "numbers jq takes and Python's json refuses (01, 1., .5, +1, infinity): passed over, small or huge" {
  make_state "$OUT/checkpoint-2" 2
  local v f line i=3
  for v in 01 1. .5 +1 1.e5 -01 infinity -nan; do
    make_state "$OUT/checkpoint-$i" "$i" '.total_flos = 12345'
    sed -i "s/\"total_flos\": 12345/\"total_flos\": $v/" "$OUT/checkpoint-$i/trainer_state.json"
    jq -e .global_step "$OUT/checkpoint-$i/trainer_state.json" >/dev/null # jq takes it
    i=$((i + 1))
  done
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped | length')" 8
  line=$(grep -n '"total_flos"' "$OUT/checkpoint-3/trainer_state.json") && line=${line%%:*}
  assert_equal "$(field '.skipped[-1].reason')" "trainer_state.json line $line: a number or literal that Python's json (the trainer's parser) refuses, though jq takes it (01, 1., .5, +1, infinity, -nan, ...)"
  assert_equal "$(jq -c '[.skipped[].reason | sub("line [0-9]+"; "line L")] | unique | length' <<<"$output")" 1
  # Huge, without a save record (parsed whole): the same.
  make_huge_state "$OUT/checkpoint-3000" 3000
  make_huge_state "$OUT/checkpoint-4000" 4000 '.total_flos = 12345'
  f=$OUT/checkpoint-4000/trainer_state.json
  sed -i 's/"total_flos": 12345/"total_flos": 0012345/' "$f"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
  assert_equal "$(field '.skipped[0].path')" "$OUT/checkpoint-4000"
  line=$(grep -n '"total_flos"' "$f") && line=${line%%:*}
  assert_equal "$(field '.skipped[0].reason')" "trainer_state.json line $line: a number or literal that Python's json (the trainer's parser) refuses, though jq takes it (01, 1., .5, +1, infinity, -nan, ...)"
}

@test "NaN, Infinity and -Infinity (what json.dumps writes for a diverged loss) are complete, small or huge" {
  make_state "$OUT/checkpoint-2" 2 '.log_history[0].loss = 1111 | .log_history[1].loss = 2222'
  sed -i 's/"loss": 1111/"loss": NaN/; s/"loss": 2222/"loss": -Infinity/' "$OUT/checkpoint-2/trainer_state.json"
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$OUT/checkpoint-2/trainer_state.json"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  make_huge_state "$OUT/checkpoint-3000" 3000 '.log_history[7].loss = 1111 | .total_flos = 2222'
  sed -i 's/"loss": 1111/"loss": NaN/; s/"total_flos": 2222/"total_flos": Infinity/' "$OUT/checkpoint-3000/trainer_state.json"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
  assert_equal "$(field '.skipped | length')" 0
}

@test "a path that is not UTF-8 in trainer_state.json (json.dumps writes low surrogates): complete" {
  make_state "$OUT/checkpoint-2" 2
  # What the trainer writes for best_model_checkpoint under a non-UTF-8 output dir.
  python3 -c 'import json, os, sys
f = sys.argv[1]; s = json.load(open(f))
s["best_model_checkpoint"] = os.fsdecode(b"/data/caf\xe9/checkpoint-2")
open(f, "w").write(json.dumps(s, indent=2, sort_keys=True) + "\n")' "$OUT/checkpoint-2/trainer_state.json"
  grep -q -F '"best_model_checkpoint": "/data/caf\udce9/checkpoint-2"' "$OUT/checkpoint-2/trainer_state.json"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
}

@test "a grep without -P (PCRE): the Python-json check is skipped, jq's answer stands" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4 '.total_flos = 12345'
  sed -i 's/"total_flos": 12345/"total_flos": 012345/' "$OUT/checkpoint-4/trainer_state.json"
  # What a grep built with --disable-perl-regexp says.
  fake_tool_on grep -P 'echo "grep: Perl matching not supported in a --disable-perl-regexp build" >&2; exit 2'
  PATH="$WORK/fakebin:$PATH" explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "a grep that fails in the Python-json check is our failure: exit 1 naming grep, nothing run" {
  make_state "$OUT/checkpoint-2" 2
  fake_tool_on grep -P 'kill -SEGV $$'
  run -1 --separate-stderr env PATH="$WORK/fakebin:$PATH" "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial 'grep was killed by signal 11'
  assert [ ! -e "$WORK/ran" ]
}

@test "two JSON objects in one trainer_state.json: passed over, small or huge" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  make_huge_state "$OUT/checkpoint-3000" 3000
  # Saved as the trainer saves it, then written twice over (appended in place): the
  # save record no longer holds, so the file is parsed whole. (A record vouches for
  # what json.dumps wrote, one object: only its ends are read, the middle never.)
  record_save "$OUT/checkpoint-3000"
  local f
  for f in "$OUT/checkpoint-4/trainer_state.json" "$OUT/checkpoint-3000/trainer_state.json"; do
    cp "$f" "$WORK/one" && cat "$WORK/one" >>"$f"
  done
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" 'more than one JSON value in trainer_state.json (two saves in one file?)'
  assert_equal "$(field '.skipped[1].reason')" 'more than one JSON value in trainer_state.json (two saves in one file?)'
}

@test "stateful_callbacks larger than the tail window: the run id is still found" {
  make_huge_state "$OUT/checkpoint-3000" 3000 \
    '.stateful_callbacks.Big = {args: {blob: [range(20000) | "x\(.)"]}, attributes: {}}
     | .stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "kept-id"}, attributes: {}}'
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
  assert_equal "$(field .run_id)" kept-id
  record_save "$OUT/checkpoint-3000" # and when only the ends are read
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .run_id)" kept-id
}

@test "a duplicate key in a huge trainer_state.json gives the answer of a full parse" {
  make_huge_state "$OUT/checkpoint-3000" 3000
  # A second global_step after log_history: a full parse keeps the last one (7).
  sed -i 's/^  "is_hyper_param_search": false,$/  "global_step": 7,\n&/' \
    "$OUT/checkpoint-3000/trainer_state.json"
  [[ $(jq .global_step "$OUT/checkpoint-3000/trainer_state.json") == 7 ]]
  record_save "$OUT/checkpoint-3000" # the ends are read, and see they cannot be sure
  explain -o "$OUT" --checkpoint "$OUT/checkpoint-3000"
  assert_failure 1
  assert_stderr --partial "cannot be used: global_step is 7, but the folder is checkpoint-3000"
}

@test "jq that crashes is our failure: exit 1 naming jq, nothing exported, nothing run" {
  make_state "$OUT/checkpoint-2" 2
  fake_jq 'kill -SEGV $$'
  run -1 --separate-stderr env PATH="$WORK/fakebin:$PATH" "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_output ''
  assert_stderr --partial 'jq was killed by signal 11'
  refute_stderr --partial 'new training run'
  assert [ ! -e "$WORK/ran" ]
}

@test "jq that cannot be run (exit 127) is our failure, not a damaged checkpoint" {
  make_state "$OUT/checkpoint-2" 2
  fake_jq 'echo "jq: error while loading shared libraries: libonig.so.5" >&2; exit 127'
  run -1 --separate-stderr env PATH="$WORK/fakebin:$PATH" "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial 'jq could not be run (exit 127): jq: error while loading shared libraries'
  assert [ ! -e "$WORK/ran" ]
}

@test "jq out of memory is our failure: the library returns 1 and exports nothing" {
  # 30000 steps, on one line (not HF's layout): only a full parse can read it, and
  # that needs more than the 8 MiB of address space this test leaves jq.
  make_state "$OUT/checkpoint-30000" 30000
  jq -c . "$OUT/checkpoint-30000/trainer_state.json" >"$WORK/min.json"
  mv "$WORK/min.json" "$OUT/checkpoint-30000/trainer_state.json"
  # shellcheck disable=SC2016 # expanded by the inner bash
  run -1 --separate-stderr bash -c '
    source "$1/lib/wandb_resume.sh"
    _WANDB_RESUME_MEM_KB=8192
    unset WANDB_RESUME
    wandb_resume::configure -o "$2" || { echo "rc=$? WANDB_RESUME=${WANDB_RESUME-unset}"; exit 1; }' \
    _ "$ROOT" "$OUT"
  assert_output 'rc=1 WANDB_RESUME=unset'
  assert_stderr --partial 'jq ran out of memory (limit 8 MiB of address space)'
}
