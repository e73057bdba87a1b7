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

@test "~ in a config's output_dir is expanded as HF does (os.path.expanduser)" {
  mkdir -p "$HOME/ckpts"
  make_state "$HOME/ckpts/out/checkpoint-6" 6
  printf 'output_dir: ~/ckpts/out\n' >cfg.yaml
  explain --config cfg.yaml
  assert_success
  assert_equal "$(field .checkpoint)" "$HOME/ckpts/out/checkpoint-6"
  jq -n '{output_dir: "~/ckpts/out"}' >cfg.json
  explain --config cfg.json
  assert_equal "$(field .checkpoint)" "$HOME/ckpts/out/checkpoint-6"
}

@test "~user in a config path is that user's home; an unknown user and a ~ inside are kept" {
  local root_home
  root_home=$(getent passwd root | cut -d: -f6)
  printf 'output_dir: ~root/x\n' >cfg.yaml
  explain --config cfg.yaml
  assert_stderr --partial "📂 output dir: ${root_home%/}/x (output_dir in cfg.yaml)"
  printf 'output_dir: ~no-such-user-b2/x\n' >cfg.yaml
  explain --config cfg.yaml
  assert_stderr --partial "📂 output dir: $WORK/~no-such-user-b2/x (output_dir in cfg.yaml)"
  printf 'output_dir: a/~/x\n' >cfg.yaml
  explain --config cfg.yaml
  assert_stderr --partial "📂 output dir: $WORK/a/~/x (output_dir in cfg.yaml)"
}

@test "~ in a config's resume_from_checkpoint is expanded too" {
  make_state "$HOME/old/checkpoint-6" 6
  printf 'resume_from_checkpoint: ~/old/checkpoint-6\n' >cfg.yaml
  explain -o "$OUT" --config cfg.yaml
  assert_success
  assert_equal "$(field .checkpoint)" "$HOME/old/checkpoint-6"
}

@test "YAML 1.1 booleans on/off/yes/no (any of PyYAML's cases) are booleans, not paths" {
  local v
  for v in on On ON yes Yes YES true True TRUE; do
    printf 'resume_from_checkpoint: %s\n' "$v" >cfg.yaml
    explain -o "$OUT" --config cfg.yaml
    assert_success
    assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  done
  for v in off Off OFF no No NO false False FALSE; do
    printf 'resume_from_checkpoint: %s # comment\n' "$v" >cfg.yaml
    explain -o "$OUT" --config cfg.yaml
    assert_success
    assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  done
}

@test "a quoted 'off' is a string (as PyYAML reads it): the path ./off" {
  printf "resume_from_checkpoint: 'off'\n" >cfg.yaml
  run -1 --separate-stderr "$TR" -o "$OUT" --config cfg.yaml --explain
  assert_stderr --partial "checkpoint $WORK/off (from resume_from_checkpoint in cfg.yaml) cannot be used"
}

@test "JSON booleans for resume_from_checkpoint: true is latest, false the default" {
  jq -n '{resume_from_checkpoint: true}' >cfg.json
  explain -o "$OUT" --config cfg.json
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  jq -n '{resume_from_checkpoint: false}' >cfg.json
  explain -o "$OUT" --config cfg.json
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}
