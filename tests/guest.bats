#!/usr/bin/env bats
# Guest manners (lib/wandb_resume/guest.bash): the caller's shell is left as it was,
# data is never executed, checkpoints are never written, and the library's own
# functions run under nounset (a misspelled name stops loudly).
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

@test "our functions run under nounset: a name never set stops the call loudly, whatever the caller's options" {
  # What a misspelled local of the decision's state does (st_reasn for st_reason):
  # bash stops on it with the name, instead of reading it as empty and choosing on.
  # shellcheck disable=SC2154 # the unset name is the point
  run -127 --separate-stderr bash -c 'source "$1"; set +u
    typo() { local st_reason=half-written; printf "%s\n" "$st_reasn"; }
    wandb_resume::_guest typo
    echo "went on"' _ "$LIB"
  assert_output ''
  assert_stderr --partial 'st_reasn: unbound variable'
  # The caller's own nounset setting is its own again after every call.
  run -0 bash -c 'source "$1"; set +u; wandb_resume::_guest true; printf "%s\n" "$-"' _ "$LIB"
  refute_output --partial u
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
  # The lock and the job's state live beside the output dir, not in it.
  before=$(snapshot "$OUT")
  run -0 "$TR" -o "$OUT" -- true
  run -0 "$TR" -o "$OUT" -- true
  run -0 "$TR" -o "$OUT" --explain --json
  assert_equal "$(snapshot "$OUT")" "$before"
  assert [ -d "$WORK/.train-resume/out/procs" ]
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

# The one line a refused load prints, for SHELL (a word in it).
refused_posix='wandb_resume.sh: bash is in POSIX mode (set -o posix, or started as sh): run "set +o posix" before sourcing, or start the script with bash'

@test "sourcing from dash gives one clear line and returns non-zero; the caller goes on" {
  command -v dash >/dev/null || skip 'no dash here'
  run --separate-stderr dash -c '. "$1"; echo "returned $?"; echo still here' _ "$LIB"
  assert_success
  assert_output $'returned 1\nstill here'
  assert_stderr 'wandb_resume.sh: needs bash >= 4.4, and this shell is not bash: run the job script with bash (#!/usr/bin/env bash)'
}

@test "sourcing from a POSIX-mode bash gives one clear line, loads nothing, and the caller goes on" {
  local probe='. "$1"; echo "returned $? loaded=${_WANDB_RESUME_LOADED-no}"; type -t wandb_resume::configure || echo "no functions"'
  run --separate-stderr bash -c "set -o posix; $probe" _ "$LIB"
  assert_output $'returned 1 loaded=no\nno functions'
  assert_stderr "$refused_posix"
  # bash started as sh, and an interactive POSIX shell (it used to set the guard
  # and define nothing)
  run --separate-stderr bash -c "exec -a sh bash -c '$probe' _ \"\$1\"" _ "$LIB"
  assert_output $'returned 1 loaded=no\nno functions'
  assert_stderr "$refused_posix"
  run --separate-stderr bash --posix -i -c "$probe" _ "$LIB"
  assert_output $'returned 1 loaded=no\nno functions'
  assert_stderr --partial "$refused_posix"
  # once out of POSIX mode, the same shell loads it
  run bash -c "set -o posix; . \"\$1\" 2>/dev/null; set +o posix; . \"\$1\"; type -t wandb_resume::configure" _ "$LIB"
  assert_output function
}

@test "the version check refuses bash older than 4.4 (checked by its logic: no old bash here)" {
  run bash -c 'source "$1"
    for v in "3 2" "4 0" "4 3" "4 4" "5 0" "5 2" "6 0"; do
      wandb_resume::_bash_supported $v && echo "$v ok" || echo "$v refused"
    done' _ "$LIB"
  assert_output $'3 2 refused\n4 0 refused\n4 3 refused\n4 4 ok\n5 0 ok\n5 2 ok\n6 0 ok'
}

@test "a part that fails to load leaves the library unloaded (no guard set), the caller running" {
  cp -R "$ROOT/lib" "$WORK/lib"
  printf 'return 1\n' >"$WORK/lib/wandb_resume/export.bash"
  run bash -c 'shopt -s expand_aliases; source "$1"; echo "returned $? loaded=${_WANDB_RESUME_LOADED-no}";
    shopt -q expand_aliases && echo "aliases still on"' _ "$WORK/lib/wandb_resume.sh"
  assert_output $'returned 1 loaded=no\naliases still on'
}

@test "a part sourced when first used (state.bash) that is missing fails the source at once, as the others do" {
  cp -R "$ROOT/lib" "$WORK/lib"
  rm "$WORK/lib/wandb_resume/state.bash"
  run --separate-stderr bash -c 'source "$1"; echo "returned $? loaded=${_WANDB_RESUME_LOADED-no}"' _ "$WORK/lib/wandb_resume.sh"
  assert_output 'returned 1 loaded=no'
  assert_stderr "wandb_resume.sh: cannot read $WORK/lib/wandb_resume/state.bash (a part of the library)"
}

@test "a part sourced when first used that fails then (json.bash for --json, supervise.bash, record.bash): our error, exit 1, nothing exported or recorded" {
  make_state "$WORK/o/checkpoint-2" 2
  cp -R "$ROOT/lib" "$WORK/lib"
  printf 'return 1\n' | tee "$WORK/lib/wandb_resume/json.bash" "$WORK/lib/wandb_resume/record.bash" >"$WORK/lib/wandb_resume/supervise.bash"
  run --separate-stderr bash -c 'source "$1" || exit 9
    wandb_resume::configure -o "$2" --explain --json; echo "configure $? ${WANDB_RESUME-unset}"
    wandb_resume::supervise -o "$2" -- true; echo "supervise $?"
    wandb_resume::record_save "$2/checkpoint-2"; echo "record_save $?"' _ "$WORK/lib/wandb_resume.sh" "$WORK/o"
  assert_output $'configure 1 unset\nsupervise 1\nrecord_save 1'
  assert_stderr --partial "wandb_resume.sh: cannot load $WORK/lib/wandb_resume/json.bash (a part of the library)"
  assert_stderr --partial "cannot load the library's json.bash"
  assert_stderr --partial "wandb_resume.sh: cannot load $WORK/lib/wandb_resume/supervise.bash (a part of the library)"
  assert_stderr --partial "wandb_resume.sh: cannot load $WORK/lib/wandb_resume/record.bash (a part of the library)"
  [[ ! -e $WORK/o/.train-resume/saved/checkpoint-2 ]]
}

@test "a part sourced when first used is read with the caller's aliases off (wandb_resume::usage called first)" {
  local plain
  plain=$(bash -c 'source "$1"; wandb_resume::usage' _ "$LIB")
  run -0 bash -c 'shopt -s expand_aliases; source "$1"; alias cat="echo ALIASED"
    wandb_resume::usage; shopt -q expand_aliases && alias cat' _ "$LIB"
  assert_output "$plain"$'\n'"alias cat='echo ALIASED'"
}

@test "the caller's BASH_REMATCH survives our calls" {
  make_state "$WORK/o/checkpoint-2" 2
  run bash -c 'source "$1"
    [[ "key=value" =~ ^([a-z]+)=(.*)$ ]]
    before=$(declare -p BASH_REMATCH)
    wandb_resume::check_run_id "a:b" >/dev/null
    wandb_resume::configure -o "$2" --config /dev/null 2>/dev/null
    wandb_resume::run_id_from_wandb_dir "$2" >/dev/null 2>&1
    wandb_resume::supervise -- true 2>/dev/null
    after=$(declare -p BASH_REMATCH)
    [[ $before == "$after" ]] && echo same || printf "%s\n%s\n" "$before" "$after"' _ "$LIB" "$WORK/o"
  assert_output same
}

@test "the caller's aliases (printf, jq, local, return) change nothing in what we do" {
  make_state "$WORK/o/checkpoint-2" 2
  local plain
  run -0 --separate-stderr bash -c 'source "$1"; wandb_resume::configure -o "$2" --explain --json' _ "$LIB" "$WORK/o"
  plain="$output|$stderr"
  run -0 --separate-stderr bash -c 'shopt -s expand_aliases
    alias printf="printf ALIASED" jq="echo JQ" local="echo LOCAL" return="echo RETURN;" setsid=false
    source "$1"; wandb_resume::configure -o "$2" --explain --json' _ "$LIB" "$WORK/o"
  assert_equal "$output|$stderr" "$plain"
  run --separate-stderr bash -c 'shopt -s expand_aliases; alias printf="printf ALIASED"; alias env=false
    source "$1"; wandb_resume::supervise -- printf "%s\n" ran; echo "returned $?"
    shopt -q expand_aliases && alias printf' _ "$LIB"
  assert_output $'ran\nreturned 0\nalias printf=\'printf ALIASED\''
}
