#!/usr/bin/env bats
# Guest manners: the caller's shell is left as it was, data is never executed,
# checkpoints are never written.
# shellcheck disable=SC2016 # single-quoted scripts are expanded by the inner shell
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
  cp -R "$FIXTURES/trl-run" "$OUT"
}

# Run bash with SETUP, then source the library and call configure twice (a resume
# and a failure), and print whether $-, BASHOPTS, IFS, OPTIND, traps and the
# working directory are unchanged.
check_manners() {
  local script='
    '"$1"'
    trap "echo bye" EXIT
    trap "" USR1
    OPTIND=3
    state() { printf "%s|%s|%q|%s|%s|%s" "$-" "$BASHOPTS" "$IFS" "$OPTIND" "$(trap -p)" "$PWD"; }
    before=$(state)
    source "$LIB"
    source "$LIB"
    wandb_resume::configure -o "$OUT" 2>/dev/null
    rc1=$?
    wandb_resume::configure -o "$OUT" -c /does/not/exist 2>/dev/null || rc2=$?
    after=$(state)
    [[ $before == "$after" ]] && echo "unchanged rc=$rc1,${rc2:-0} id=${WANDB_RUN_ID:-}" ||
      printf "changed:\n%s\n%s\n" "$before" "$after"
    trap - EXIT'
  LIB=$LIB OUT=$OUT run bash -c "$script"
  assert_success
  assert_output "unchanged rc=0,1 id=$(fixture_state_id trl-run checkpoint-4)"
}

@test "leaves the caller's shell unchanged under set -euo pipefail" {
  check_manners 'set -euo pipefail'
}

@test "leaves the caller's shell unchanged under nounset alone" {
  check_manners 'set -u'
}

@test "leaves the caller's shell unchanged with no options at all" {
  check_manners 'set +euo pipefail'
}

@test "leaves the caller's shell unchanged with an empty IFS" {
  check_manners 'IFS='
}

@test "leaves the caller's shell unchanged with IFS set to a newline" {
  check_manners $'IFS=\'\n\''
}

@test "leaves the caller's shell unchanged under noglob" {
  check_manners 'set -f'
}

@test "leaves the caller's shell unchanged under nullglob" {
  check_manners 'shopt -s nullglob'
}

@test "leaves the caller's shell unchanged under failglob" {
  check_manners 'shopt -s failglob'
}

@test "leaves the caller's shell unchanged under extglob, dotglob and nocasematch" {
  check_manners 'shopt -s extglob dotglob nocasematch; shopt -u sourcepath'
}

@test "sourcing the library changes nothing until a function is called" {
  run bash -c 'set -u; before=$(set -o; shopt -p; printf %q "$IFS"); source "$1";
    after=$(set -o; shopt -p; printf %q "$IFS"); [[ $before == "$after" ]] && env | grep -c "^WANDB_" || true' _ "$LIB"
  assert_output 0
}

@test "a failing call returns to a set -e caller instead of exiting it" {
  run bash -c 'set -e; source "$1"; wandb_resume::configure -c /nowhere 2>/dev/null || echo "returned $?"; echo still here' _ "$LIB"
  assert_output $'returned 1\nstill here'
}

@test "never writes into the checkpoints or the run folders" {
  local before
  before=$(snapshot "$OUT")
  run -0 "$TR" -o "$OUT" -- true
  run -0 "$TR" -o "$OUT" --explain --json
  assert_equal "$(snapshot "$OUT")" "$before"
}

@test "never executes a folder name: paths with \$(...), *, spaces, newlines and a leading dash" {
  local odd=$'-out $(touch pwned) *\n`touch pwned2` dir'
  mkdir -p -- "$WORK/$odd"
  make_state "$WORK/$odd/checkpoint-2" 2
  make_run "$WORK/$odd/wandb" 'run-20260101_000000-x$(touch pwned3)' 'x$(touch pwned3)'
  make_run "$WORK/$odd/wandb" 'run-20260101_000001-good' 'good'
  cd "$WORK"
  run -0 --separate-stderr "$TR" --output-dir "./$odd" --explain --json
  assert_equal "$(field .checkpoint)" "$WORK/$odd/checkpoint-2"
  assert_equal "$(field .run_id)" good
  run find "$WORK" "$HOME" -name 'pwned*'
  assert_output ''
  run -0 --separate-stderr "$TR" --output-dir "$odd" --explain --json
  assert_equal "$(field .checkpoint)" "$WORK/$odd/checkpoint-2"
}

@test "never executes a run id: ids with \$(...) are data, even when valid" {
  make_state "$WORK/o2/checkpoint-2" 2 '.wandb_run_id = "$(touch pwned)"'
  run -0 --separate-stderr "$TR" -o "$WORK/o2" -- bash -c 'printf "%s" "$WANDB_RUN_ID"'
  assert_output '$(touch pwned)'
  assert [ ! -e pwned ]
}
