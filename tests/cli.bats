#!/usr/bin/env bats
# bin/train-resume: options, exit statuses, the JSON contract, exec, install.
# shellcheck disable=SC2016 # single-quoted scripts are expanded by the inner shell
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
}

# The options the parser accepts, read from its case labels.
accepted_options() {
  sed -n '/^wandb_resume::_parse_options()/,/^}/p' "$ROOT/lib/wandb_resume/options.bash" |
    grep -oE '^ +(-[a-zA-Z] \| )?--[a-z-]+( \| --[a-z-]+=\*)?\)' |
    grep -oE -- '--[a-z-]+' | sort -u
}

@test "the did-you-mean list holds every option the parser accepts, and no other" {
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
  assert_equal "$(printf '%s\n' "${_WANDB_RESUME_OPTIONS[@]}" | sort -u)" "$(accepted_options)"
}

@test "--help lists every option the parser accepts, and no other" {
  run -0 "$TR" --help
  local listed
  listed=$(grep -oE '^ +(-[a-zA-Z], )?--[a-z-]+' <<<"$output" | grep -oE -- '--[a-z-]+' | sort -u)
  assert_equal "$listed" "$(accepted_options)"
  assert_equal "$(accepted_options | wc -l)" 16
}

@test "every short option in --help is accepted" {
  run -0 "$TR" --help
  local short
  for short in $(grep -oE '^  -[a-zA-Z],' <<<"$output" | tr -d ' ,'); do
    run "$TR" "$short" --help
    refute_output --partial 'unknown option'
  done
}

@test "--version prints the version" {
  run -0 "$TR" --version
  assert_output --regexp '^train-resume [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "an unknown option is a usage error" {
  run -2 --separate-stderr "$TR" --frobnicate
  assert_stderr --partial 'unknown option: --frobnicate'
}

@test "an option without its value is a usage error" {
  run -2 --separate-stderr "$TR" --output-dir
  assert_stderr --partial 'option --output-dir needs a value'
}

@test "without a COMMAND or --explain it is a usage error" {
  run -2 --separate-stderr "$TR" -o "$OUT"
  assert_stderr --partial 'no COMMAND to run'
}

@test "runs COMMAND with the decision in its environment" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  run -0 --separate-stderr "$TR" -o "$OUT" -- bash -c 'echo "$WANDB_RUN_ID $WANDB_RESUME $TRAIN_RESUME_CHECKPOINT"'
  assert_output "$(fixture_state_id trl-run checkpoint-4) must $OUT/checkpoint-4"
}

@test "takes COMMAND without -- from the first non-option" {
  run -0 --separate-stderr "$TR" -o "$OUT" printenv WANDB_RESUME
  assert_output allow
}

@test "passes COMMAND's exit status through" {
  run -7 "$TR" -o "$OUT" -- bash -c 'exit 7'
}

@test "execs COMMAND in its own process (no wrapper left behind)" {
  run -0 --separate-stderr "$TR" -o "$OUT" -- bash -c 'ps -o comm= -p $PPID'
  refute_output train-resume
}

@test "--explain runs nothing, and says what it would run" {
  run -0 --separate-stderr "$TR" -o "$OUT" --explain -- touch ran
  assert [ ! -e ran ]
  assert_stderr --partial 'would run: touch ran'
}

@test "--json prints exactly the contract's keys, with their types" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  mkdir "$OUT/checkpoint-6"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field 'keys_unsorted | join(",")')" \
    'mode,checkpoint,run_id,run_id_source,wandb_resume,wandb_resume_from,skipped,warnings'
  assert_equal "$(field '[.mode, .run_id_source, .wandb_resume] | join(",")')" 'resume,trainer-state,must'
  assert_equal "$(field '[.checkpoint, .run_id] | map(type) | join(",")')" 'string,string'
  assert_equal "$(field '.skipped | map(keys | join(",")) | unique | join(";")')" 'path,reason'
  assert_equal "$(field '.warnings | type')" array
}

@test "--json on a new run has nulls where there is nothing" {
  explain -o "$OUT"
  assert_equal "$(field '[.checkpoint, .run_id, .run_id_source] | map(tostring) | join(",")')" 'null,null,null'
  assert_equal "$(field .wandb_resume)" allow
}

@test "stdout holds only the JSON; logs go to stderr" {
  explain -o "$OUT"
  run jq -e . <<<"$output"
  assert_success
  refute_output --partial '🆕'
}

@test "--json escapes paths and reasons as JSON strings" {
  local odd=$'out "q" \\ tab\t nl\n \x01 end'
  mkdir -p "$WORK/$odd/checkpoint-4"
  make_state "$WORK/$odd/checkpoint-2" 2
  explain -o "$WORK/$odd"
  assert_success
  assert_equal "$(field .checkpoint)" "$WORK/$odd/checkpoint-2"
  assert_equal "$(field '.skipped[0].path')" "$WORK/$odd/checkpoint-4"
}

@test "wandb_resume::latest_checkpoint without jq: checkpoints cannot be checked, says so and which sources still work" {
  make_state "$OUT/checkpoint-2" 2
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
  PATH=$(no_jq_path) run -1 --separate-stderr wandb_resume::latest_checkpoint "$OUT"
  assert_stderr --partial "jq not found on PATH: it is needed to check the trainer_state.json of the 1 checkpoint(s) in $OUT, so no safe decision can be made (without jq only the checkpoint-wandb, wandb-dir and env run id sources work): install the jq command"
}
