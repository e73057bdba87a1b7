#!/usr/bin/env bats
# --config FILE: the trainer's own YAML or JSON config.
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
}

@test "resumes from resume_from_checkpoint in a YAML config" {
  printf 'model_name_or_path: tiny\nresume_from_checkpoint: "%s" # the older one\n' \
    "$OUT/checkpoint-2" >cfg.yaml
  explain -o "$OUT" --config cfg.yaml
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_stderr --partial '(chosen by resume_from_checkpoint in cfg.yaml)'
}

@test "resume_from_checkpoint: true in a config means the latest checkpoint" {
  printf 'resume_from_checkpoint: true\n' >cfg.yaml
  explain -o "$OUT" --config cfg.yaml
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "resume_from_checkpoint: null or false in a config leaves the default" {
  printf 'resume_from_checkpoint: null\n' >null.yaml
  explain -o "$OUT" --config null.yaml
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  printf 'resume_from_checkpoint: false\n' >false.yaml
  explain -o "$OUT" --config false.yaml
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "takes output_dir from the config when --output-dir is not given" {
  printf 'output_dir: %s\nlearning_rate: 0.001\n' "$OUT" >cfg.yaml
  explain --config cfg.yaml
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  assert_stderr --partial "📂 output dir: $OUT (output_dir in cfg.yaml)"
}

@test "reads resume_from_checkpoint and output_dir from a JSON config" {
  jq -n --arg o "$OUT" --arg c "$OUT/checkpoint-2" \
    '{output_dir: $o, resume_from_checkpoint: $c, max_steps: 6}' >cfg.json
  explain --config cfg.json
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
}

@test "RESUME_FROM_CHECKPOINT_DIR wins over the config" {
  printf 'resume_from_checkpoint: %s\n' "$OUT/checkpoint-2" >cfg.yaml
  RESUME_FROM_CHECKPOINT_DIR=$OUT/checkpoint-4 explain -o "$OUT" --config cfg.yaml
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "a missing config file is an error naming it" {
  run -1 --separate-stderr "$TR" -o "$OUT" --config nope.yaml --explain
  assert_stderr --partial 'config file nope.yaml: no such file'
}

@test "a config that is not valid JSON is an error" {
  printf '{"output_dir": ' >bad.json
  run -1 --separate-stderr "$TR" --config bad.json --explain
  assert_stderr --partial 'config file bad.json is not usable JSON'
}

@test "reads a single-quoted resume_from_checkpoint from a YAML config" {
  printf "resume_from_checkpoint: '%s'\n" "$OUT/checkpoint-2" >cfg.yaml
  explain -o "$OUT" --config cfg.yaml
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
}
