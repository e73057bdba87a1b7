#!/usr/bin/env bats
# Messages for common mistakes (issue 20): what a newcomer gets wrong first, and the
# one clear line each gets instead of a bare error or bash's own noise.
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
}

@test "an option in HF's spelling gets a did-you-mean: --output_dir -> --output-dir" {
  run -2 --separate-stderr "$TR" --output_dir "$OUT" -- true
  assert_stderr --partial 'unknown option: --output_dir (did you mean --output-dir?)'
  run -2 --separate-stderr "$TR" --output_dir="$OUT" -- true
  assert_stderr --partial "unknown option: --output_dir=$OUT (did you mean --output-dir?)"
  assert [ ! -e "$OUT" ]
}

@test "near-misses of an option get a did-you-mean: a typo, a prefix, another case, an HF name" {
  local typo
  for typo in --ouput-dir:--output-dir --jsn:--json --Explain:--explain --nolock:--no-lock \
    --forget:--forget-failed --checkpoint-dir:--checkpoint --resume_from_checkpoint:--checkpoint --out:--output-dir \
    --dry-run:--explain '--wandb:--wandb-dir or --wandb-rewind'; do
    run -2 --separate-stderr "$TR" "${typo%%:*}" x
    assert_stderr --partial "unknown option: ${typo%%:*} (did you mean ${typo#*:}?)"
  done
}

@test "an option like none of ours gets no guess" {
  run -2 --separate-stderr "$TR" --frobnicate
  assert_stderr --partial 'unknown option: --frobnicate'
  refute_stderr --partial 'did you mean'
}

@test "no arguments at all: the usage lines and where to read more, exit 2" {
  run -2 --separate-stderr "$TR"
  assert_output ''
  assert_stderr --regexp '^Usage: train-resume \[OPTIONS\] \[--\] COMMAND \[ARGS\.\.\.\]'
  assert_stderr --partial 'train-resume sync OUTPUT_DIR [--dry-run]'
  assert_stderr --partial "Try 'train-resume --help' for the options."
  refute_stderr --partial 'error'
}

@test "a mistyped COMMAND: 'command not found: pythn', exit 127, nothing decided, locked or made" {
  run -127 --separate-stderr "$TR" -o "$OUT" -- pythn train.py
  assert_equal "$stderr" 'train-resume: ❌ error: command not found: pythn (nothing was run)'
  assert [ ! -e "$OUT" ]
}

@test "a COMMAND path that does not exist is not found either, exit 127" {
  run -127 --separate-stderr "$TR" -o "$OUT" -- ./train.sh
  assert_stderr 'train-resume: ❌ error: command not found: ./train.sh (nothing was run)'
}

@test "a COMMAND that is not executable: exit 126, as a shell's" {
  printf '#!/bin/sh\n' >train.sh
  run -126 --separate-stderr "$TR" -o "$OUT" -- ./train.sh
  assert_stderr 'train-resume: ❌ error: cannot run ./train.sh: not an executable file (nothing was run)'
  run -126 --separate-stderr "$TR" -o "$OUT" -- "$WORK"
  assert_stderr --partial "cannot run $WORK: not an executable file"
}

@test "--explain does not need COMMAND to exist (nothing is run)" {
  run -0 --separate-stderr "$TR" -o "$OUT" --explain -- pythn train.py
  assert_stderr --partial 'would run: pythn train.py'
}

@test "without jq nothing starts, not even a new run (its first restart would need jq); says how to get the command" {
  run -1 --separate-stderr env PATH="$(no_jq_path)" "$TR" -o "$OUT" -- touch ran
  assert_stderr --partial "jq not found on PATH: every checkpoint's trainer_state.json is read with it, so a job started without it could not be resumed. Nothing was run: install the jq command (apt-get install jq, dnf install jq, brew install jq; without root: conda install -c conda-forge jq; the pip package jq has no command)"
  refute_stderr --partial 'make deps'
  assert [ ! -e ran ]
  assert [ ! -e "$OUT" ]
}

@test "without jq --explain says the same (a start would fail), and so does wandb_resume::configure" {
  run -1 --separate-stderr env PATH="$(no_jq_path)" "$TR" -o "$OUT" --explain --json
  assert_output ''
  assert_stderr --partial 'jq not found on PATH'
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
  local rc=0
  PATH=$(no_jq_path) wandb_resume::configure -o "$OUT" 2>"$WORK/err" || rc=$?
  assert_equal "$rc" 1
  assert [ -z "${WANDB_RESUME+set}" ]
  run grep -c 'jq not found on PATH' "$WORK/err"
  assert_output 1
}

@test "--help and --version need no jq" {
  run -0 env PATH="$(no_jq_path)" "$TR" --version
  run -0 env PATH="$(no_jq_path)" "$TR" --help
}

@test "an output dir whose parent does not exist either: a warning (a mistyped parent would be a new run)" {
  explain -o "$WORK/ruhns/exp1"
  assert_success
  assert_equal "$(field .mode)" new
  assert_stderr --partial "⚠️ the output dir's parent $WORK/ruhns does not exist either: a new run creates the whole path (mistyped? a resume needs the dir that holds the checkpoints)"
  assert_equal "$(field '.warnings | length')" 1
}

@test "an output dir that does not exist yet in an existing parent: no warning" {
  explain -o "$OUT"
  assert_success
  refute_stderr --partial 'does not exist either'
  assert_equal "$(field '.warnings | length')" 0
}

@test "a relative -c that is not under the cwd but under the output dir: the error says which path to give" {
  make_state "$OUT/checkpoint-2" 2
  run -1 --separate-stderr "$TR" -o "$OUT" -c checkpoint-2 -- true
  assert_stderr --partial "checkpoint $WORK/checkpoint-2 (from --checkpoint) cannot be used: no such file or directory (a relative path is taken from the current directory, $WORK; $OUT/checkpoint-2 exists: give that path)"
}

@test "a relative -c found nowhere: no hint" {
  mkdir -p "$OUT"
  run -1 --separate-stderr "$TR" -o "$OUT" -c checkpoint-9 -- true
  assert_stderr --partial "checkpoint $WORK/checkpoint-9 (from --checkpoint) cannot be used: no such file or directory"
  refute_stderr --partial 'relative path'
}

# A resume whose checkpoint carries no W&B run id, and no run folder anywhere.
resume_without_id() {
  cp -R "$FIXTURES/plain-run" "$OUT"
  rm -r "$OUT/wandb"
}

@test "no W&B run id found is a warning (⚠️), not an error: the job goes on" {
  resume_without_id
  run -0 --separate-stderr "$TR" -o "$OUT" -- printenv WANDB_RESUME
  assert_output allow
  assert_stderr --partial '⚠️ no W&B run id found (searched:'
  refute_stderr --partial '❌'
  WANDB_RESUME_LANG=zh run -0 --separate-stderr "$TR" -o "$OUT" -- true
  assert_stderr --partial '⚠️ 未能找到WandB run ID'
}

@test "no W&B run id message when W&B is off: WANDB_MODE=disabled" {
  resume_without_id
  WANDB_MODE=disabled run -0 --separate-stderr "$TR" -o "$OUT" -- true
  refute_stderr --partial 'no W&B run id found'
  assert_stderr --partial 'resuming from checkpoint'
}

@test "no W&B run id message when COMMAND says --report_to none (or another integration)" {
  resume_without_id
  local args
  for args in '--report_to none' '--report-to=none' '--report_to tensorboard' \
    '--report_to=wandb --report_to none'; do
    # shellcheck disable=SC2086 # the arguments are meant to split
    run -0 --separate-stderr "$TR" -o "$OUT" -- true train.py $args
    refute_stderr --partial 'no W&B run id found'
  done
}

@test "the W&B run id message stays when COMMAND may report to W&B" {
  resume_without_id
  local args
  for args in '' '--report_to wandb' '--report_to tensorboard wandb' '--report_to=all' \
    '--report_to none --report_to=WandB'; do
    # shellcheck disable=SC2086 # the arguments are meant to split
    run -0 --separate-stderr "$TR" -o "$OUT" -- true train.py $args
    assert_stderr --partial '⚠️ no W&B run id found'
  done
}
