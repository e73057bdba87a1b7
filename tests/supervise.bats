#!/usr/bin/env bats
# wandb_resume::supervise outside SLURM: DONE, signal forwarding, crashes, manners.
# (The requeue itself is tested against a real SLURM: tests/slurm/test_slurm.py.)
# shellcheck disable=SC2016 # single-quoted scripts are expanded by the inner shell
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
  unset SLURM_JOB_ID SLURM_ARRAY_JOB_ID SLURM_ARRAY_TASK_ID SLURM_RESTART_COUNT
  export OUT
  mkdir -p "$OUT"
}

# Run bash SCRIPT with the library sourced; stdout and stderr apart.
in_bash() {
  run --separate-stderr bash -c 'source "$1"; shift; eval "$1"' _ "$LIB" "$1"
}

@test "a command that finishes writes DONE in the output dir" {
  in_bash 'wandb_resume::supervise -o "$OUT" -- true'
  assert_success
  assert [ -f "$OUT/DONE" ]
  assert_stderr --partial "✅ finished: wrote $OUT/DONE; this run will not be requeued"
}

@test "with DONE in the output dir it runs nothing" {
  : >"$OUT/DONE"
  in_bash 'wandb_resume::supervise -o "$OUT" -- touch "$OUT/ran"'
  assert_success
  assert [ ! -e "$OUT/ran" ]
  assert_stderr --partial "✅ $OUT/DONE exists: the run is finished; nothing to run, nothing to requeue"
}

@test "forwards the signal to the command, waits for it, and does not call it finished" {
  in_bash '
    wandb_resume::supervise -o "$OUT" -- bash -c "trap \"touch \\\"\$OUT/saved\\\"; exit 0\" USR1; sleep 30 & wait" &
    sup=$!
    sleep 1
    kill -USR1 "$sup"
    wait "$sup"'
  assert_success
  assert [ -f "$OUT/saved" ]
  assert [ ! -e "$OUT/DONE" ]
  assert_stderr --partial '⏸ got SIGUSR1: asking the trainer to save and stop'
  assert_stderr --partial '⏹ stopped by SIGUSR1 (exit 0), no progress: newest checkpoint still none; not under SLURM: not requeued'
}

@test "--signal USR2 forwards USR2 instead of USR1" {
  in_bash '
    wandb_resume::supervise --signal USR2 -- bash -c "trap \"touch \\\"\$OUT/usr2\\\"; exit 0\" USR2; sleep 30 & wait" &
    sup=$!
    sleep 1
    kill -USR2 "$sup"
    wait "$sup"'
  assert_success
  assert [ -f "$OUT/usr2" ]
  assert_stderr --partial '⏸ got SIGUSR2: asking the trainer to save and stop'
}

@test "a crash passes its exit status through and says why it stopped" {
  make_state "$OUT/checkpoint-2" 2
  in_bash 'wandb_resume::supervise -o "$OUT" -- bash -c "exit 3"'
  assert_failure 3
  assert_stderr --partial '⏹ crashed (exit 3), no progress: newest checkpoint still checkpoint-2; not under SLURM: not requeued'
  assert [ ! -e "$OUT/DONE" ]
}

@test "puts the caller's traps and options back" {
  in_bash '
    set -u; trap "echo mine" USR1; trap "echo term" TERM
    before=$(trap -p; echo "$-")
    wandb_resume::supervise -o "$OUT" -- true 2>/dev/null
    after=$(trap -p; echo "$-")
    [[ $before == "$after" ]] && echo same'
  assert_output same
}

@test "the command gets the caller's locale, not the library's C locale" {
  in_bash 'export LC_ALL=C.UTF-8; wandb_resume::supervise -- printenv LC_ALL'
  assert_output C.UTF-8
}

@test "supervise usage errors return 2" {
  in_bash 'wandb_resume::supervise -o "$OUT"'
  assert_failure 2
  assert_stderr --partial 'supervise: no COMMAND to supervise'
  in_bash 'wandb_resume::supervise --max-restarts x -- true'
  assert_failure 2
  in_bash 'wandb_resume::supervise --signal KILL -- true'
  assert_failure 2
  assert_stderr --partial '--signal must be USR1, USR2, TERM, INT or HUP, not: KILL'
}
