#!/usr/bin/env bats
# The file system changing under the decision: a checkpoint folder (or a file in it)
# deleted while it is checked, as save_total_limit does while a previous job still
# saves, or while an --explain from a monitoring script looks. The vanished one is
# passed over and the folder listed again; never an exit 1 for it, never a failure
# of our tools. Each case is injected deterministically: a tool of ours on PATH
# (fake_tool_on) that deletes or creates folders when it is given a chosen file,
# then runs the real tool.
# shellcheck disable=SC2016 # bash -c programs take their data as arguments, expanded where they run
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
}

# When TOOL is given a path matching the glob ARG, run the shell words CMD... first
# (each word quoted for the fake's script), then the real tool.
# Arguments: TOOL ARG CMD...
on_tool() {
  local tool=$1 arg=$2 code
  shift 2
  printf -v code '%q ' "$@"
  fake_tool_on "$tool" "$arg" "$code"
}

# train-resume --explain --json over $OUT with the fakes first on PATH.
decide() {
  run --separate-stderr env PATH="$WORK/fakebin:$PATH" "$TR" -o "$OUT" --explain --json "$@"
}

# Expect success, checkpoint WANT taken, the vanished one passed over with REASON
# (a prefix), and no failure of ours said. Arguments: WANT VANISHED REASON
assert_passed_over() {
  assert_success
  assert_equal "$(field .checkpoint)" "$1"
  assert_equal "$(jq -r --arg p "$2" --argjson n "${#3}" \
    '[.skipped[] | select(.path == $p) | .reason[0:$n]] | join("|")' <<<"$output")" "$3"
  assert_stderr --partial "skipping $2: $3"
  refute_stderr --partial 'failed'
  refute_stderr --partial 'none complete'
  refute_stderr --partial 'error'
}

@test "a checkpoint folder deleted while its trainer_state.json is read: passed over, the one before taken" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  on_tool grep '*/checkpoint-4/trainer_state.json' rm -rf -- "$OUT/checkpoint-4"
  decide
  assert_passed_over "$OUT/checkpoint-2" "$OUT/checkpoint-4" \
    "vanished while it was checked (deleted meanwhile: rotated away by save_total_limit?); looking at $OUT again"
  assert [ ! -e "$OUT/checkpoint-4" ]
}

@test "trainer_state.json alone deleted while it is read (the folder being removed): passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  on_tool grep '*/checkpoint-4/trainer_state.json' rm -f -- "$OUT/checkpoint-4/trainer_state.json"
  decide
  assert_passed_over "$OUT/checkpoint-2" "$OUT/checkpoint-4" \
    'trainer_state.json vanished while it was checked (deleted meanwhile'
}

@test "a large trainer_state.json deleted between its head and its tail: passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-400" 400
  on_tool grep '*/checkpoint-400/trainer_state.json' rm -rf -- "$OUT/checkpoint-400"
  decide
  assert_passed_over "$OUT/checkpoint-2" "$OUT/checkpoint-400" 'vanished while it was checked'
}

@test "a checkpoint folder deleted while its weights' sizes are read (stat): passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  on_tool stat '*/checkpoint-4/model.safetensors' rm -rf -- "$OUT/checkpoint-4"
  decide
  assert_passed_over "$OUT/checkpoint-2" "$OUT/checkpoint-4" 'vanished while it was checked'
}

@test "optimizer.pt deleted while the zip end records are read (tail): passed over, naming it" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  on_tool tail '*/checkpoint-4/optimizer.pt' rm -f -- "$OUT/checkpoint-4/optimizer.pt"
  decide
  assert_passed_over "$OUT/checkpoint-2" "$OUT/checkpoint-4" \
    "optimizer.pt vanished while it was checked (deleted meanwhile: rotated away by save_total_limit?); looking at $OUT again"
}

@test "model.safetensors deleted while its header length is read (head): passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  on_tool head '*/checkpoint-4/model.safetensors' rm -f -- "$OUT/checkpoint-4/model.safetensors"
  decide
  assert_passed_over "$OUT/checkpoint-2" "$OUT/checkpoint-4" 'model.safetensors vanished while it was checked'
}

@test "a sharded checkpoint deleted while its index is read (jq): passed over" {
  make_state "$OUT/checkpoint-2" 2
  mkdir -p "$OUT"
  cp -R "$FIXTURES/saves/sharded/checkpoint-2" "$OUT/checkpoint-4"
  jq --indent 2 '.global_step = 4' "$OUT/checkpoint-4/trainer_state.json" >"$WORK/ts.json"
  mv "$WORK/ts.json" "$OUT/checkpoint-4/trainer_state.json"
  on_tool jq '*/checkpoint-4/model.safetensors.index.json' rm -rf -- "$OUT/checkpoint-4"
  decide
  assert_passed_over "$OUT/checkpoint-2" "$OUT/checkpoint-4" 'vanished while it was checked'
}

@test "a checkpoint deleted right after it was found complete: passed over, the one before taken" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  # The last tool of a check: the grep over the safetensors headers.
  on_tool grep '*data_offsets*' bash -c '[[ -e $1 ]] && rm -rf -- "$1"' _ "$OUT/checkpoint-4"
  decide
  assert_passed_over "$OUT/checkpoint-2" "$OUT/checkpoint-4" 'vanished while it was checked'
}

@test "rotated away while checked, a newer checkpoint saved meanwhile: the folder is listed again and the newer one taken" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$WORK/spare" 6
  # What save_total_limit=1 does: checkpoint-6 saved, then checkpoint-2 removed.
  on_tool grep '*/checkpoint-2/trainer_state.json' bash -c 'mv -- "$1" "$2" && rm -rf -- "$3"' _ \
    "$WORK/spare" "$OUT/checkpoint-6" "$OUT/checkpoint-2"
  decide
  assert_passed_over "$OUT/checkpoint-6" "$OUT/checkpoint-2" 'vanished while it was checked'
}

@test "the only checkpoint half removed while checked, a newer one saved meanwhile: never 'none complete'" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$WORK/spare" 6
  # The rotation has removed optimizer.pt and not yet the folder: checkpoint-2 is
  # seen incomplete, then the listing has changed.
  on_tool grep '*/checkpoint-2/trainer_state.json' bash -c 'mv -- "$1" "$2" && rm -f -- "$3"' _ \
    "$WORK/spare" "$OUT/checkpoint-6" "$OUT/checkpoint-2/optimizer.pt"
  decide
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-6"
  assert_equal "$(field '.skipped[0].path')" "$OUT/checkpoint-2"
  refute_stderr --partial 'none complete'
}

@test "the only checkpoint deleted while checked: a new run in what is now a dir without checkpoints" {
  make_state "$OUT/checkpoint-2" 2
  on_tool grep '*/checkpoint-2/trainer_state.json' rm -rf -- "$OUT/checkpoint-2"
  decide
  assert_success
  assert_equal "$(field .mode)" new
  assert_stderr --partial "🆕 new training run (no checkpoint in $OUT)"
}

@test "a checkpoint named with --checkpoint deleted while it is checked: an error naming it (nothing to fall back to)" {
  make_state "$OUT/checkpoint-4" 4
  on_tool grep '*/checkpoint-4/trainer_state.json' rm -f -- "$OUT/checkpoint-4/trainer_state.json"
  decide -c "$OUT/checkpoint-4"
  assert_failure 1
  assert_stderr --partial "checkpoint $OUT/checkpoint-4 (from --checkpoint) cannot be used: trainer_state.json vanished while it was checked"
}

@test "our tools failing with nothing deleted is still our failure (exit 1), not a vanish" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  on_tool stat '*/checkpoint-4/model.safetensors' exit 1
  decide
  assert_failure 1
  assert_stderr --partial 'stat failed on'
  refute_stderr --partial vanished
}

@test "a W&B run folder deleted while the run folders are scanned: passed over, the next newest one's id taken" {
  make_state "$OUT/checkpoint-4" 4
  make_run "$OUT/wandb" offline-run-20260101_000000-older older
  make_run "$OUT/wandb" offline-run-20260102_000000-newer newer
  # No tool runs in the scan: the library sourced, its look at one run folder
  # preceded by the deletion.
  run --separate-stderr bash -c '
    source "$1" || exit 9
    eval "original_$(declare -f wandb_resume::_try_run_folder)"
    wandb_resume::_try_run_folder() {
      [[ $1 == */offline-run-20260102_000000-newer ]] && rm -rf -- "$1"
      original_wandb_resume::_try_run_folder "$@"
    }
    wandb_resume::configure -o "$2" --sources wandb-dir --explain --json' _ "$LIB" "$OUT"
  assert_success
  assert_equal "$(field .run_id)" older
  assert_equal "$(field '.skipped[0].path')" "$OUT/wandb/offline-run-20260102_000000-newer"
  assert_equal "$(field '.skipped[0].reason')" 'vanished while it was looked at (deleted meanwhile); passed over'
}
