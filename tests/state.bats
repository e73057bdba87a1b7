#!/usr/bin/env bats
# A large trainer_state.json with no save record is parsed whole, in pieces, by two
# jq at once (state.bash: _read_split): the answer must be the one a full parse gives,
# whatever the file holds; when the pieces cannot be sure (another layout, damage),
# the file is parsed the old way (jq --stream), which says what is wrong.
# The pieces are made small here (files over 64 KiB, pieces of 16 KiB), so that
# test-sized states take that path.
# shellcheck disable=SC2030,SC2031 # each @test is its own subshell; a helper reads bats' output of its own runs
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
}

teardown() {
  cleanup_workdir
}

# A large state in HF's layout (3000 log_history entries: ~330 KB).
# Arguments: DIR STEP [JQ_FILTER]
make_large_state() {
  make_state "$1" "$2" '.log_history |= map(. + {pad: "0123456789012345678901234567890123456789"})'"${3:+ | $3}"
}

# train-resume --explain --json over $OUT (and ARGS) through the library, with
# _read_split's sizes made small; $WORK/fakebin first on PATH.
decide_split() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  run --separate-stderr env PATH="$WORK/fakebin:$PATH" bash -c '
    source "$1" || exit 1
    _WANDB_RESUME_FULL_MAX=65536 _WANDB_RESUME_CHUNK=16384 _WANDB_RESUME_REACH=4096
    shift
    wandb_resume::configure "$@"' _ "$LIB" -o "$OUT" --explain --json "$@"
}

# A jq on PATH that logs, to $WORK/jq.log, each run's kind: first or last (the two
# jq of the pieces), stream (jq --stream, the old way), then runs the real one.
log_jq() {
  local real
  real=$(command -v jq) || return
  mkdir -p "$WORK/fakebin"
  # shellcheck disable=SC2016 # the fake's own code, expanded when it runs
  printf '#!/bin/bash\nfor a; do case $a in first | last | --stream) printf "%%s\\n" "${a#--}" >>%q ;; esac; done\nexec %q "$@"\n' \
    "$WORK/jq.log" "$real" >"$WORK/fakebin/jq"
  chmod +x "$WORK/fakebin/jq"
}

# The jq runs logged by log_jq, one line each, sorted.
jq_runs() {
  [[ -f $WORK/jq.log ]] && sort "$WORK/jq.log" | tr '\n' ' '
}

# The same decision as a plain full parse (the file is under 8 MiB: one jq).
full_parse() {
  run --separate-stderr "$TR" -o "$OUT" --explain --json
}

@test "a large state in HF's layout: parsed in pieces by two jq at once, the answer of a full parse" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000 \
    '.stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "split-id", wandb_step: 41}, attributes: {}} | .max_steps = 9000'
  log_jq
  decide_split
  assert_success
  assert_equal "$(jq_runs)" 'first last '
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
  assert_equal "$(field .run_id)" split-id
  local split=$output
  full_parse
  assert_success
  assert_equal "$split" "$output"
}

@test "a state of a few pieces is read by one jq (no second half)" {
  make_state "$OUT/checkpoint-700" 700 '.log_history |= map(. + {pad: "0123456789012345678901234567890123456789"})'
  (($(stat -c %s "$OUT/checkpoint-700/trainer_state.json") > 65536))
  log_jq
  decide_split
  assert_success
  assert_equal "$(jq_runs)" 'last '
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-700"
}

@test "keys before and after log_history (a duplicate key, the later one wins), values of any shape: as a full parse" {
  make_large_state "$OUT/checkpoint-3000" 3000 \
    '.log_history[5].nested = {a: [1, {b: [true, null, "x]}{[0,"]}], c: {}} | .log_history[2999].list = [[], [[]], {}]
     | .trial_params = {lr: [0.1, 0.2]} | .stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "a  b"}, attributes: {}}'
  # A second global_step after log_history: a full parse keeps the last one (3000),
  # and the first (7) is wrong for the folder.
  sed -i 's/^  "global_step": 3000,$/  "global_step": 7,/; s/^  "logging_steps": 1,$/&\n  "global_step": 3000,/' \
    "$OUT/checkpoint-3000/trainer_state.json"
  [[ $(jq .global_step "$OUT/checkpoint-3000/trainer_state.json") == 3000 ]]
  log_jq
  decide_split --checkpoint "$OUT/checkpoint-3000"
  assert_success
  assert_equal "$(jq_runs)" 'first last '
  assert_equal "$(field .run_id)" 'a  b' # the tail's strings as they are
  local split=$output
  run --separate-stderr "$TR" -o "$OUT" --explain --json --checkpoint "$OUT/checkpoint-3000"
  assert_equal "$split" "$output"
}

@test "a run id with spaces in the tail is read exactly (only log_history's white space is squeezed)" {
  make_large_state "$OUT/checkpoint-3000" 3000 \
    '.stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "a  b   c"}, attributes: {}}'
  log_jq
  # shellcheck disable=SC2016 # expanded by the inner bash
  run --separate-stderr env PATH="$WORK/fakebin:$PATH" bash -c '
    source "$1" || exit 1
    _WANDB_RESUME_FULL_MAX=65536 _WANDB_RESUME_CHUNK=16384 _WANDB_RESUME_REACH=4096
    wandb_resume::run_id_from_trainer_state "$2"' _ "$LIB" "$OUT/checkpoint-3000/trainer_state.json"
  assert_success
  assert_output 'a  b   c'
  assert_equal "$(jq_runs)" 'first last '
}

@test "NaN and Infinity in log_history (json.dumps writes them): complete in pieces" {
  make_large_state "$OUT/checkpoint-3000" 3000 '.log_history[7].loss = 1111 | .log_history[2000].loss = 2222'
  sed -i 's/"loss": 1111/"loss": NaN/; s/"loss": 2222/"loss": -Infinity/' "$OUT/checkpoint-3000/trainer_state.json"
  log_jq
  decide_split
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
  assert_equal "$(jq_runs)" 'first last '
}

# Each damaged file below: what the pieces cannot be sure of is parsed the old way,
# and the answer is a full parse's (passed over, the checkpoint before taken).
# Arguments: REASON_PREFIX. Reads: $OUT (checkpoint-2 good, checkpoint-3000 damaged).
assert_damaged_as_full_parse() {
  local split
  decide_split
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].path')" "$OUT/checkpoint-3000"
  assert_regex "$(field '.skipped[0].reason')" "$1"
  split=$(field .checkpoint)
  full_parse
  assert_equal "$(field .checkpoint)" "$split"
}

# Delete the line AT lines away from the line `"step": STEP` of the large state of
# $OUT/checkpoint-3000 (negative: before it). Arguments: STEP AT
delete_near_step() {
  local f=$OUT/checkpoint-3000/trainer_state.json line
  line=$(grep -n "\"step\": $1\$" "$f") && line=${line%%:*}
  sed -i "$((line + $2))d" "$f"
}

@test "a log_history entry cut short in the middle (its last line and its end lost): passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000
  delete_near_step 1500 1
  delete_near_step 1500 0
  assert_damaged_as_full_parse '^not valid JSON \(truncated\?\): '
}

@test "a bracket missing in the middle (an entry's opening brace): passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000
  delete_near_step 1700 -3
  sed -n '/"step": 1699$/{n;n;p}' "$OUT/checkpoint-3000/trainer_state.json" | grep -q -x '      "loss": 0.5,'
  assert_damaged_as_full_parse '^not valid JSON \(truncated\?\): '
}

@test "a closing bracket missing in the middle (an entry's end without its comma line): passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000
  delete_near_step 1700 1
  assert_damaged_as_full_parse '^not valid JSON \(truncated\?\): '
}

@test "two JSON objects in one large trainer_state.json: passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000
  local f=$OUT/checkpoint-3000/trainer_state.json
  cp "$f" "$WORK/one" && cat "$WORK/one" >>"$f"
  assert_damaged_as_full_parse '^more than one JSON value in trainer_state.json'
}

@test "a line split by a crash (a newline in the middle of a key): passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000
  sed -i '0,/"step": 1234$/s//"st\nep": 1234/' "$OUT/checkpoint-3000/trainer_state.json"
  assert_damaged_as_full_parse '^not valid JSON \(truncated\?\): '
}

@test "text of the file that mimics the cuts between pieces (] then [\"#\") is not taken for one: passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000
  local f=$OUT/checkpoint-3000/trainer_state.json line
  # After each of several entries, what a cut would write: "]" and the mark of chunk
  # K ("#", "##", ...) before the comma. Not JSON (an array after a value inside
  # log_history).
  local mark='#'
  for line in 1000 1001 1002 2998 2999; do
    sed -i "/\"step\": $line\$/,/^    },\$/s/^    },\$/    }]\n[\"$mark\",/" "$f"
    mark+='#'
  done
  grep -q -F '["###",' "$f"
  run jq -e . "$f"
  assert_failure
  assert_damaged_as_full_parse '^not valid JSON \(truncated\?\): '
}

@test "a large state truncated in log_history (a crash while it was written): passed over without a parse" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000
  truncate -s 200000 "$OUT/checkpoint-3000/trainer_state.json"
  log_jq
  assert_damaged_as_full_parse '^not valid JSON \(truncated\?\)'
  assert_equal "$(jq_runs)" ''
}

@test "a large state in another layout (one line; indent 4): parsed the old way, complete" {
  make_large_state "$OUT/checkpoint-3000" 3000
  make_large_state "$OUT/checkpoint-4000" 4000
  jq -c . "$OUT/checkpoint-4000/trainer_state.json" >"$WORK/min.json"
  mv "$WORK/min.json" "$OUT/checkpoint-4000/trainer_state.json"
  jq --indent 4 . "$OUT/checkpoint-3000/trainer_state.json" >"$WORK/four.json"
  mv "$WORK/four.json" "$OUT/checkpoint-3000/trainer_state.json"
  log_jq
  decide_split
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4000"
  decide_split --checkpoint "$OUT/checkpoint-3000"
  assert_success
  assert_equal "$(jq_runs)" 'stream stream '
}

@test "CRLF line ends (no entry end found where one is looked for): parsed the old way, complete" {
  make_large_state "$OUT/checkpoint-3000" 3000
  sed -i 's/$/\r/' "$OUT/checkpoint-3000/trainer_state.json"
  log_jq
  decide_split
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
  assert_equal "$(jq_runs)" 'stream '
}

@test "in pieces, what Python's json refuses is still refused: a number (01), bytes that are not UTF-8" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000 '.log_history[1500].loss = 12345'
  make_large_state "$OUT/checkpoint-4000" 4000
  local f=$OUT/checkpoint-3000/trainer_state.json line
  sed -i 's/"loss": 12345/"loss": 012345/' "$f"
  sed -i '0,/"pad": "0123/s//"pad": "\xe9123/' "$OUT/checkpoint-4000/trainer_state.json"
  log_jq
  decide_split
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" 'trainer_state.json is not valid UTF-8 (the trainer could not read it)'
  line=$(grep -n '"loss": 012345' "$f") && line=${line%%:*}
  assert_equal "$(field '.skipped[1].reason')" "trainer_state.json line $line: a number or literal that Python's json (the trainer's parser) refuses, though jq takes it (01, 1., .5, +1, infinity, -nan, ...)"
  # Each file twice: squeezed to words (where the grep's answer is needed), then to
  # spaces (whose answer, with Python's checks, says what is wrong).
  assert_equal "$(jq_runs)" 'first first first first last last last last '
}

# The arguments of every tr run, to $WORK/tr.log (one line each).
log_tr() {
  local real
  real=$(command -v tr) || return
  mkdir -p "$WORK/fakebin"
  printf '#!/bin/bash\nprintf "%%q " "$@" >>%q; echo >>%q\nexec %q "$@"\n' \
    "$WORK/tr.log" "$WORK/tr.log" "$real" >"$WORK/fakebin/tr"
  chmod +x "$WORK/fakebin/tr"
}

# The decision over $OUT in pieces, one pass (two jq, two tr -s), log_history squeezed
# as SQUEEZE (words: the tr sets of the squeeze to words; spaces: only white space):
# the answer of a full parse, with the run id ID. Arguments: SQUEEZE ID
assert_split_squeezed() {
  local split words=2
  [[ $1 == words ]] || words=0
  log_jq
  log_tr
  decide_split
  assert_success
  assert_equal "$(jq_runs)" 'first last '
  assert_equal "$(grep -c -e '^-s ' "$WORK/tr.log")" 2
  assert_equal "$(grep -c -e '^-s .*A-Za-z0-9._+-' "$WORK/tr.log")" "$words"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
  assert_equal "$(field .run_id)" "$2"
  split=$output
  full_parse
  assert_equal "$split" "$output"
}

@test "log_history squeezed to words (numbers and literals one 0) when the file holds no backslash: the answer of a full parse" {
  make_large_state "$OUT/checkpoint-3000" 3000 \
    '.log_history[5].nested = {a: [1, {b: [true, null, "x]}{[0,"]}], c: {}} | .log_history[9].t = "é ü 語 🙂 #, ##"
     | .stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "w-1.2_x"}, attributes: {}} | .max_steps = 9000'
  run -1 grep -q -F "\\" "$OUT/checkpoint-3000/trainer_state.json"
  assert_split_squeezed words w-1.2_x
}

@test "a backslash in the file (an escape): log_history squeezed to spaces only, the answer of a full parse" {
  make_large_state "$OUT/checkpoint-3000" 3000 \
    '.log_history[5].text = "a\nb \"q\" \\ \t" | .log_history[2500].u = "\u0001x"
     | .stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "esc-id"}, attributes: {}}'
  grep -q -F '\"q\"' "$OUT/checkpoint-3000/trainer_state.json"
  assert_split_squeezed spaces esc-id
}

@test "the look for a backslash failing: squeezed to words, the escapes make jq refuse the pieces; the old way answers, as a full parse" {
  make_large_state "$OUT/checkpoint-3000" 3000 \
    '.log_history[5].text = "a\nb" | .stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "esc-id"}, attributes: {}}'
  fake_tool_on grep "\\\\" 'exit 2'
  log_jq
  decide_split
  assert_success
  assert_equal "$(jq_runs)" 'first last stream '
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
  assert_equal "$(field .run_id)" esc-id
  local split=$output
  full_parse
  assert_equal "$split" "$output"
}

@test "the token grep failing: the pieces squeezed to words are not taken without it (read again squeezed to spaces), and the failure is ours" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000
  fake_tool_on grep '*Infinity*' 'exit 2'
  log_jq
  decide_split
  assert_failure 1
  assert_stderr --partial 'grep failed (exit 2)'
  assert_equal "$(jq_runs)" 'first first last last '
}

@test "two values with nothing between them (truefalse, 0.5true), which the squeeze to words would make one 0: refused as a full parse refuses them" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000 '.log_history[1500].flag = "MARK"'
  make_large_state "$OUT/checkpoint-4000" 4000 '.log_history[100].flag = "MARK"'
  sed -i 's/"MARK"/truefalse/' "$OUT/checkpoint-3000/trainer_state.json"
  sed -i 's/"MARK"/0.5true/' "$OUT/checkpoint-4000/trainer_state.json"
  run jq . "$OUT/checkpoint-3000/trainer_state.json"
  assert_failure
  run jq . "$OUT/checkpoint-4000/trainer_state.json"
  assert_failure
  decide_split
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped | length')" 2
  assert_regex "$(field '.skipped[0].reason')" '^not valid JSON \(truncated\?\): '
  assert_regex "$(field '.skipped[1].reason')" '^not valid JSON \(truncated\?\): '
}

@test "a file changed while it is read in pieces: read again the old way" {
  make_large_state "$OUT/checkpoint-3000" 3000
  local f=$OUT/checkpoint-3000/trainer_state.json
  # The writers squeeze white space with tr -s: touch the file then.
  fake_tool_on tr -s "touch -d '1 hour ago' $(printf %q "$f")"
  log_jq
  decide_split
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
  assert_equal "$(jq_runs)" 'first last stream '
}

@test "a writer of the pieces that fails: not sure, read the old way (no failure of ours said)" {
  make_large_state "$OUT/checkpoint-3000" 3000
  fake_tool_on tr -s 'exit 3'
  log_jq
  decide_split
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
  assert_equal "$(jq_runs)" 'first last stream '
}

@test "jq that crashes on the pieces is our failure, said as such (the old way fails the same)" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000
  fake_tool_on jq '*' 'kill -SEGV $$'
  decide_split
  assert_failure 1
  assert_stderr --partial 'jq was killed by signal 11'
}

@test "each jq of the pieces stays small: a state one jq cannot parse whole in 16 MiB is read in pieces" {
  # 30000 entries (~3.3 MB): parsed whole (one jq, as up to 8 MiB), it needs more
  # than 16 MiB of address space; each piece of 16 KiB needs little.
  make_large_state "$OUT/checkpoint-30000" 30000
  log_jq
  # shellcheck disable=SC2016 # expanded by the inner bash
  run --separate-stderr env PATH="$WORK/fakebin:$PATH" bash -c '
    source "$1" || exit 1
    _WANDB_RESUME_MEM_KB=16384
    wandb_resume::configure -o "$2" --explain --json' _ "$LIB" "$OUT"
  assert_failure 1
  assert_stderr --partial 'jq ran out of memory (limit 16 MiB of address space)'
  # shellcheck disable=SC2016 # expanded by the inner bash
  run --separate-stderr env PATH="$WORK/fakebin:$PATH" bash -c '
    source "$1" || exit 1
    _WANDB_RESUME_FULL_MAX=65536 _WANDB_RESUME_CHUNK=16384 _WANDB_RESUME_REACH=4096 _WANDB_RESUME_MEM_KB=16384
    wandb_resume::configure -o "$2" --explain --json' _ "$LIB" "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-30000"
  assert_equal "$(jq_runs)" 'first last '
}

@test "the old way (jq --stream) does not let through a [ right after a closing bracket, as a full parse does not" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000
  local f=$OUT/checkpoint-3000/trainer_state.json
  # Indent 4 (not HF's layout: no pieces), and `[1] [2]` in the middle, which jq
  # 1.6's stream parser takes as if a comma were there.
  jq --indent 4 '.log_history[1500].list = "MARK"' "$f" >"$WORK/four.json"
  sed 's/"MARK"/[1] [2]/' "$WORK/four.json" >"$f"
  jq -c --stream . "$f" >/dev/null # the stream parser takes it
  run jq . "$f"
  assert_failure
  log_jq
  assert_damaged_as_full_parse '^not valid JSON \(truncated\?\): Expected separator between values at line [0-9]+ \(a \[ right after a closing bracket\)$'
  assert_equal "$(jq_runs)" 'stream '
}

@test "the old way (jq --stream) stopping on an assertion over damaged JSON: passed over, not our failure" {
  make_state "$OUT/checkpoint-2" 2
  make_large_state "$OUT/checkpoint-3000" 3000
  local f=$OUT/checkpoint-3000/trainer_state.json
  # Indent 4; an entry that loses its last member and its end: `"pad": "...",` then `{`.
  jq --indent 4 . "$f" >"$WORK/four.json"
  sed '/"step": 1500$/,+1d' "$WORK/four.json" >"$f"
  run jq -c --stream . "$f"
  assert_failure 134
  log_jq
  assert_damaged_as_full_parse "^not valid JSON \(truncated\?\): jq's stream parser gave up on it \(.*stream_token: Assertion"
  assert_equal "$(jq_runs)" 'stream '
}
