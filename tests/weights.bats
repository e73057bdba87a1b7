#!/usr/bin/env bats
# Complete means loadable: the model weights, optimizer, scheduler and RNG state a
# resume loads are there and whole. Fixtures: real transformers saves, one of them a
# PEFT LoRA adapter (tests/fixtures/record_saves.py).
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
  SAVES=$FIXTURES/saves
}

teardown() {
  cleanup_workdir
}

# Copy the real save KIND (full, sharded, weights-only, adapter) to OUT/checkpoint-STEP, with
# its global_step set to STEP. Arguments: KIND STEP
save_at() {
  local dst=$OUT/checkpoint-$2
  mkdir -p "$OUT"
  cp -R "$SAVES/$1/checkpoint-2" "$dst"
  jq --indent 2 --argjson s "$2" '.global_step = $s' "$dst/trainer_state.json" >"$WORK/ts.json"
  mv "$WORK/ts.json" "$dst/trainer_state.json"
}

# checkpoint-2 a whole real save, checkpoint-4 the real save KIND to damage.
two_saves() {
  save_at full 2
  save_at "$1" 4
}

# Expect checkpoint-4 passed over for REASON and checkpoint-2 taken.
assert_fell_back() {
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].path')" "$OUT/checkpoint-4"
  assert_equal "$(field '.skipped[0].reason')" "$1"
}

@test "weights: a real full save (model.safetensors, optimizer, scheduler, rng) is complete" {
  two_saves full
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "weights: a real sharded save (index and every shard whole) is complete" {
  two_saves sharded
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "weights: model.safetensors missing" {
  two_saves full
  rm "$OUT/checkpoint-4/model.safetensors"
  explain -o "$OUT"
  assert_fell_back 'no model weights (model.safetensors, adapter_model.safetensors, a sharded index, pytorch_model.bin, FSDP or DeepSpeed folders)'
}

@test "weights: model.safetensors truncated" {
  two_saves full
  truncate -s -100 "$OUT/checkpoint-4/model.safetensors"
  explain -o "$OUT"
  assert_fell_back 'model.safetensors: its header says the data ends at byte 339976, the file has 339876 (truncated?)'
}

@test "weights: model.safetensors empty" {
  two_saves full
  : >"$OUT/checkpoint-4/model.safetensors"
  explain -o "$OUT"
  assert_fell_back 'model.safetensors is empty (a save cut short?)'
}

@test "weights: model.safetensors cut inside its header" {
  two_saves full
  truncate -s 100 "$OUT/checkpoint-4/model.safetensors"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason' | cut -c1-45)" 'model.safetensors: safetensors header length '
  assert_equal "$(field '.skipped[0].reason' | grep -o 'does not fit.*')" 'does not fit the file (100 bytes; truncated?)'
}

@test "weights: a safetensors header that is not JSON" {
  two_saves full
  printf '\x04\x00\x00\x00\x00\x00\x00\x00{{{{' >"$OUT/checkpoint-4/model.safetensors"
  explain -o "$OUT"
  assert_fell_back "model.safetensors: the safetensors header names no tensor's data_offsets (truncated or damaged)"
}

# Write a safetensors FILE by hand (stdlib Python): one 4-byte tensor and the
# header as json.dumps gives it with INDENT (none: compact, as the Rust writer) and a
# metadata value that holds the text '"data_offsets":[0,99999999]'.
# Arguments: FILE [INDENT]
handmade_safetensors() {
  python3 -c 'import json, struct, sys
header = {"__metadata__": {"note": "\"data_offsets\":[0,99999999]"},
          "w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}
indent = int(sys.argv[2]) if sys.argv[2] else None
text = json.dumps(header, indent=indent).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(text)) + text + b"wxyz")' "$1" "${2:-}"
}

@test "weights: a safetensors header's text inside a string is not taken for a tensor; spaced-out headers are read too" {
  two_saves full
  handmade_safetensors "$OUT/checkpoint-4/model.safetensors"
  grep -q -a -F '\"data_offsets\":[0,99999999]' "$OUT/checkpoint-4/model.safetensors"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  handmade_safetensors "$OUT/checkpoint-4/model.safetensors" 2
  grep -q -a -F '"data_offsets": [' "$OUT/checkpoint-4/model.safetensors"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  truncate -s -1 "$OUT/checkpoint-4/model.safetensors"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_regex "$(field '.skipped[0].reason')" '^model.safetensors: its header says the data ends at byte [0-9]+, the file has [0-9]+ \(truncated\?\)$'
}

@test "weights: a real PEFT LoRA adapter save (adapter_model.safetensors, optimizer, scheduler, rng) is complete" {
  two_saves adapter
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  assert_equal "$(field '.skipped | length')" 0
}

@test "weights: a real adapter save with adapter_model.safetensors truncated" {
  two_saves adapter
  truncate -s -1 "$OUT/checkpoint-4/adapter_model.safetensors"
  explain -o "$OUT"
  assert_fell_back 'adapter_model.safetensors: its header says the data ends at byte 9216, the file has 9215 (truncated?)'
}

@test "weights: a real adapter save with adapter_model.safetensors missing (adapter_config.json alone)" {
  two_saves adapter
  rm "$OUT/checkpoint-4/adapter_model.safetensors"
  explain -o "$OUT"
  assert_fell_back 'no model weights (model.safetensors, adapter_model.safetensors, a sharded index, pytorch_model.bin, FSDP or DeepSpeed folders)'
}

@test "weights: a shard named by the index missing" {
  two_saves sharded
  rm "$OUT/checkpoint-4/model-00005-of-00011.safetensors"
  explain -o "$OUT"
  assert_fell_back 'model-00005-of-00011.safetensors (named by model.safetensors.index.json) missing'
}

@test "weights: a shard truncated" {
  two_saves sharded
  truncate -s -10 "$OUT/checkpoint-4/model-00003-of-00011.safetensors"
  explain -o "$OUT"
  assert_fell_back 'model-00003-of-00011.safetensors (named by model.safetensors.index.json): its header says the data ends at byte 16528, the file has 16518 (truncated?)'
}

@test "weights: a sharded index truncated" {
  two_saves sharded
  truncate -s -20 "$OUT/checkpoint-4/model.safetensors.index.json"
  explain -o "$OUT"
  assert_fell_back 'model.safetensors.index.json is not valid JSON (truncated?)'
}

@test "weights: an index naming a shard outside the checkpoint" {
  two_saves sharded
  jq '.weight_map |= map_values("../../etc/passwd")' "$OUT/checkpoint-4/model.safetensors.index.json" >"$WORK/i.json"
  mv "$WORK/i.json" "$OUT/checkpoint-4/model.safetensors.index.json"
  explain -o "$OUT"
  assert_fell_back 'model.safetensors.index.json names no usable shards (weight_map)'
}

@test "weights: optimizer.pt missing" {
  two_saves full
  rm "$OUT/checkpoint-4/optimizer.pt"
  explain -o "$OUT"
  assert_fell_back 'optimizer.pt missing (the trainer would go on with a fresh optimizer, a different run)'
}

@test "weights: optimizer.pt truncated (no zip end record)" {
  two_saves full
  truncate -s -30 "$OUT/checkpoint-4/optimizer.pt"
  explain -o "$OUT"
  assert_fell_back 'optimizer.pt: the zip file torch wrote has no end record (truncated?)'
}

@test "weights: an unreadable optimizer.pt in the checkpoint it would take is an error (owner, mode, user), not a fall back" {
  open_workdir
  two_saves full
  chmod 600 "$OUT/checkpoint-4/optimizer.pt"
  run -1 --separate-stderr as_nobody "$TR" -o "$OUT" --explain --json
  assert_output ''
  assert_stderr --partial "cannot read $OUT/checkpoint-4, the checkpoint the decision would take: optimizer.pt: permission denied (owner root:root -rw-------; running as nobody)"
}

@test "weights: scheduler.pt missing" {
  two_saves full
  rm "$OUT/checkpoint-4/scheduler.pt"
  explain -o "$OUT"
  assert_fell_back 'scheduler.pt missing (the trainer would restart the learning rate schedule)'
}

@test "weights: rng_state.pth missing" {
  two_saves full
  rm "$OUT/checkpoint-4/rng_state.pth"
  explain -o "$OUT"
  assert_fell_back 'rng_state.pth missing (the save was cut short before its last files?)'
}

@test "weights: a real save_only_model checkpoint is passed over, unless --allow-weights-only" {
  two_saves weights-only
  explain -o "$OUT"
  assert_fell_back 'weights only (saved with save_only_model: no optimizer.pt, scheduler.pt or rng_state.pth): the trainer would go on with a fresh optimizer and scheduler, a different run; --allow-weights-only resumes from it anyway'
  explain -o "$OUT" --allow-weights-only
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "weights: a save_only_model checkpoint named explicitly is an error saying so" {
  two_saves weights-only
  run -1 --separate-stderr "$TR" -o "$OUT" -c "$OUT/checkpoint-4" --explain
  assert_stderr --partial "checkpoint $OUT/checkpoint-4 (from --checkpoint) cannot be used: weights only (saved with save_only_model"
}

@test "weights: a folder of only trainer_state.json is not complete (the trainer cannot resume from it)" {
  save_at full 2
  STATE_ONLY=1 make_state "$OUT/checkpoint-4" 4
  explain -o "$OUT"
  assert_fell_back 'no model weights (model.safetensors, adapter_model.safetensors, a sharded index, pytorch_model.bin, FSDP or DeepSpeed folders)'
}

@test "weights: only folders of trainer_state.json alone: an error, not a resume nor a new run" {
  STATE_ONLY=1 make_state "$OUT/checkpoint-2" 2
  run -1 --separate-stderr "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial "$OUT/checkpoint-2: no model weights (model.safetensors"
  assert_stderr --partial 'none complete'
  assert [ ! -e "$WORK/ran" ]
}

@test "weights: a grep that crashes reading the safetensors headers is our failure, not a damaged checkpoint" {
  two_saves full
  # The real grep for everything else, a crash when it is given the headers'
  # data_offsets pattern.
  fake_tool_on grep '*data_offsets*' 'kill -SEGV $$'
  run -1 --separate-stderr env PATH="$WORK/fakebin:$PATH" "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial 'grep was killed by signal 11'
  refute_stderr --partial 'skipping'
  assert [ ! -e "$WORK/ran" ]
}

@test "weights: a jq that crashes reading a sharded index is our failure, not a damaged checkpoint" {
  two_saves sharded
  # The real jq for everything else, a crash when its program reads weight_map.
  fake_tool_on jq '*weight_map*' 'kill -SEGV $$'
  run -1 --separate-stderr env PATH="$WORK/fakebin:$PATH" "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial 'jq was killed by signal 11'
  refute_stderr --partial 'skipping'
  assert [ ! -e "$WORK/ran" ]
}
