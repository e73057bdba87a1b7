#!/usr/bin/env bats
# train-resume sync: the plan over W&B run folders recorded from real offline runs,
# some SIGKILLed (tests/fixtures/sync/, made by its record.py; the wandb version is
# in its VERSIONS). No W&B server is reachable here: the upload itself is not tested;
# a stub `wandb` records the calls it gets.
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
  [[ -x $ROOT/.venv/bin/python ]] || skip 'no .venv: the .wandb files are read with wandb installed there'
  export TRAIN_RESUME_PYTHON=$ROOT/.venv/bin/python
  mkdir -p "$OUT" "$WORK/bin"
  cp -R "$FIXTURES/sync/wandb" "$OUT/wandb"
  # shellcheck disable=SC2016 # the stub's own code, expanded when it runs
  printf '%s\n' '#!/usr/bin/env bash' 'printf "%s\n" "$*" >>"$CALLS"' \
    'for a; do [[ $a == *"${FAIL_ON:-/nothing/}"* ]] && printf "%s\n" "${FAIL_SAYS:-}" >&2 && exit 1; done' \
    'exit 0' >"$WORK/bin/wandb"
  chmod +x "$WORK/bin/wandb"
  export TRAIN_RESUME_WANDB=$WORK/bin/wandb CALLS=$WORK/calls
  # The three segments of three-seg in name order: the second one was started with
  # TZ=Etc/GMT+5, so its name sorts first.
  mapfile -t SEG < <(cd "$OUT/wandb" && printf '%s\n' offline-run-*-three-seg)
  mapfile -t KILLED < <(cd "$OUT/wandb" && printf '%s\n' offline-run-*-killed)
}

@test "--dry-run syncs the three segments of a run in start-time order, not name order, in one call" {
  run -0 --separate-stderr "$TR" sync "$OUT" --dry-run
  assert_line --regexp "^three-seg +${SEG[1]} .* ok +20 +1-20 +call 3\$"
  assert_line --regexp "^three-seg +${SEG[0]} .* ok +20 +21-40 +call 3\$"
  assert_line --regexp "^three-seg +${SEG[2]} .* ok +20 +41-60 +call 3\$"
  local w=$OUT/wandb
  assert_line "call 3: $(printf '%q ' "$TRAIN_RESUME_WANDB" sync "$w/${SEG[1]}" "$w/${SEG[0]}" "$w/${SEG[2]}" | sed 's/ $//')"
  # the table's rows follow the plan's order
  run -0 grep -n -- '-three-seg ' <<<"$output"
  assert_line --index 0 --partial "${SEG[1]}"
  assert_line --index 1 --partial "${SEG[0]}"
}

@test "--dry-run runs nothing and says so" {
  run -0 --separate-stderr "$TR" sync "$OUT" --dry-run
  assert [ ! -e "$CALLS" ]
  [[ $stderr == *'train-resume: --dry-run: nothing was run'* ]]
}

@test "skips a header-only file (a SIGKILL before the first 32 KiB block) and says so" {
  run -0 --separate-stderr "$TR" sync "$OUT" --dry-run
  assert_line --regexp "^killed +${KILLED[0]} +- +header-only +0 +- +skip: no complete record"
  [[ $stderr == *"${KILLED[0]}: no complete record (killed before W&B wrote its first 32 KiB block); its rows are lost (skipped)"* ]]
  refute_output --partial "${KILLED[0]} "$'\n'
  refute_line --regexp "^call .*${KILLED[0]}"
}

@test "goes on past a file cut inside a record, with a warning naming the rows lost; the later folder gets its own call" {
  run -0 --separate-stderr "$TR" sync "$OUT" --dry-run
  assert_line --regexp "^killed +${KILLED[1]} .* truncated +[0-9]+ +1-[0-9]+ +call 1 \(ends inside a record: rows after global step [0-9]+ lost\)\$"
  assert_line --regexp "^killed +${KILLED[2]} .* ok +20 +150-169 +call 2\$"
  assert_line "call 1: $(printf '%q' "$TRAIN_RESUME_WANDB") sync $(printf '%q' "$OUT/wandb/${KILLED[1]}")"
  assert_line "call 2: $(printf '%q' "$TRAIN_RESUME_WANDB") sync $(printf '%q' "$OUT/wandb/${KILLED[2]}")"
  [[ $stderr =~ ${KILLED[1]}:\ the\ file\ ends\ inside\ a\ record.*bytes\ after\ its\ last\ complete\ record\ are\ not\ synced,\ so\ the\ rows\ logged\ after\ global\ step\ [0-9]+\ \(_step\ [0-9]+\)\ are\ lost ]]
}

@test "runs the planned wandb sync calls, in order" {
  run -0 --separate-stderr "$TR" sync "$OUT"
  local w=$OUT/wandb
  run cat "$CALLS"
  assert_line --index 0 "sync $w/${KILLED[1]}"
  assert_line --index 1 "sync $w/${KILLED[2]}"
  assert_line --index 2 "sync $w/${SEG[1]} $w/${SEG[0]} $w/${SEG[2]}"
  assert_equal "${#lines[@]}" 3
}

@test "the call of a cut file fails as wandb sync does on it: the next call of its run still runs" {
  FAIL_ON=${KILLED[1]} FAIL_SAYS='error: file ends with an incomplete record' \
    run -0 --separate-stderr "$TR" sync "$OUT"
  assert_line 'error: file ends with an incomplete record'
  assert_line 'call 1: exit 1'
  assert_line 'call 2: exit 0'
}

@test "any other failed call stops the later calls of its run: a newer segment is never synced first" {
  FAIL_ON=${KILLED[1]} FAIL_SAYS='network is unreachable' run -1 --separate-stderr "$TR" sync "$OUT"
  assert_line 'call 1: exit 1'
  assert_line --partial 'call 2: not run (an earlier call of run killed failed)'
  assert_line 'call 3: exit 0'
  run cat "$CALLS"
  assert_equal "${#lines[@]}" 2
}

@test "a folder synced before (run-<id>.wandb.synced) is left out of the call" {
  : >"$OUT/wandb/${SEG[1]}/run-three-seg.wandb.synced"
  run -0 --separate-stderr "$TR" sync "$OUT" --dry-run
  assert_line --regexp "^three-seg +${SEG[1]} .* skip: synced before \(.wandb.synced\)\$"
  assert_line --partial "call 3: $(printf '%q' "$TRAIN_RESUME_WANDB") sync $(printf '%q' "$OUT/wandb/${SEG[0]}") "
}

@test "wandb_resume::sync works from the sourced library and keeps the caller's shell" {
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
  local before after
  before=$(
    set +o
    shopt -p
  )
  run -0 wandb_resume::sync "$OUT/wandb" --dry-run
  assert_line --partial 'call 3:'
  after=$(
    set +o
    shopt -p
  )
  assert_equal "$after" "$before"
}

@test "sync usage errors exit 2; a missing W&B folder is exit 1" {
  run -2 --separate-stderr "$TR" sync
  run -2 --separate-stderr "$TR" sync "$OUT" --nope
  run -2 --separate-stderr "$TR" sync "$OUT" "$OUT"
  run -1 --separate-stderr "$TR" sync "$WORK/none"
  [[ $stderr == *"no W&B folder at $WORK/none/wandb"* ]]
  run -0 "$TR" sync --help
  assert_line --partial 'Usage: train-resume sync OUTPUT_DIR [--dry-run]'
}

@test "the command line shown is the real wandb sync's when TRAIN_RESUME_WANDB is not set" {
  unset TRAIN_RESUME_WANDB
  run -0 --separate-stderr "$TR" sync "$OUT" --dry-run
  assert_line "call 2: wandb sync $(printf '%q' "$OUT/wandb/${KILLED[2]}")"
}

@test "without wandb for the python that reads the files: one clean line, no traceback" {
  # the venv's python without its site-packages: a python that has no wandb
  printf '#!/bin/sh\nexec %q -S "$@"\n' "$ROOT/.venv/bin/python" >"$WORK/bin/python-nowandb"
  chmod +x "$WORK/bin/python-nowandb"
  TRAIN_RESUME_PYTHON=$WORK/bin/python-nowandb run -1 --separate-stderr "$TR" sync "$OUT" --dry-run
  assert_equal "$stderr" "train-resume: ❌ error: sync needs wandb to read the .wandb files, and $WORK/bin/python-nowandb cannot import it: install it there (pip install wandb), or set TRAIN_RESUME_PYTHON to the python of the env that trains"
  assert_output ''
}

@test "a TRAIN_RESUME_PYTHON that does not exist: one clean line" {
  TRAIN_RESUME_PYTHON=$WORK/no-python run -1 --separate-stderr "$TR" sync "$OUT" --dry-run
  assert_equal "$stderr" "train-resume: ❌ error: sync: $WORK/no-python not found (set TRAIN_RESUME_PYTHON to the python of the env that trains)"
}

@test "without the wandb command: one clean line before the first call, nothing run" {
  TRAIN_RESUME_WANDB=$WORK/no-wandb run -1 --separate-stderr "$TR" sync "$OUT"
  assert_stderr --partial "train-resume: ❌ error: sync: the wandb command ($WORK/no-wandb) is not found: install wandb (pip install wandb), or set TRAIN_RESUME_WANDB to its path"
  refute_stderr --partial 'command not found'
  assert_line --regexp '^call 1: '
  refute_line --regexp '^call 1: exit'
}
