#!/usr/bin/env bats
# What wandb_resume::configure exports. These tests call it WITHOUT `run` (a
# subshell would hide the exports) and then look at the variables.
# shellcheck disable=SC2030,SC2031 # each @test is its own subshell: exports stay in it, by design
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
}

@test "on a resume exports WANDB_RUN_ID, WANDB_RESUME=must and the checkpoint" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  wandb_resume::configure -o "$OUT" 2>"$WORK/log"
  assert_equal "$WANDB_RUN_ID" "$(fixture_state_id trl-run checkpoint-4)"
  assert_equal "$WANDB_RESUME" must
  assert_equal "$TRAIN_RESUME_CHECKPOINT" "$OUT/checkpoint-4"
  assert_equal "$TRAIN_RESUME_RUN_ID_SOURCE" trainer-state
  run env
  assert_line "WANDB_RUN_ID=$WANDB_RUN_ID"
  assert_line "TRAIN_RESUME_CHECKPOINT=$OUT/checkpoint-4"
  run cat "$WORK/log"
  assert_line "train-resume: 🔧 export WANDB_RUN_ID=$WANDB_RUN_ID"
  assert_line 'train-resume: 🔧 export WANDB_RESUME=must'
  assert_line 'train-resume: ✅ W&B resume configured'
}

@test "--resume-mode allow exports WANDB_RESUME=allow on a resume" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  wandb_resume::configure -o "$OUT" --resume-mode allow 2>/dev/null
  assert_equal "$WANDB_RESUME" allow
  assert [ -n "$WANDB_RUN_ID" ]
}

@test "WANDB_RESUME_MODE=allow exports WANDB_RESUME=allow on a resume" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  export WANDB_RESUME_MODE=allow
  wandb_resume::configure -o "$OUT" 2>/dev/null
  assert_equal "$WANDB_RESUME" allow
}

@test "a resume mode other than must or allow is a usage error" {
  run -2 --separate-stderr wandb_resume::configure -o "$OUT" --resume-mode never
  assert_stderr --partial 'resume mode must be must or allow, not: never'
}

@test "a new run exports WANDB_RESUME=allow and sets no WANDB_RUN_ID" {
  wandb_resume::configure -o "$OUT" 2>"$WORK/log"
  assert_equal "$WANDB_RESUME" allow
  assert [ -z "${WANDB_RUN_ID+set}" ]
  assert [ -z "${TRAIN_RESUME_CHECKPOINT+set}" ]
  run cat "$WORK/log"
  assert_line --partial 'train-resume: 🆕 new training run'
  assert_line 'train-resume: 🔧 export WANDB_RESUME=allow'
}

@test "a new run after a resume in the same shell takes back our WANDB_RUN_ID" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  wandb_resume::configure -o "$OUT" 2>/dev/null
  assert [ -n "$WANDB_RUN_ID" ]
  wandb_resume::configure -o "$WORK/fresh" 2>"$WORK/log"
  assert [ -z "${WANDB_RUN_ID+set}" ]
  assert [ -z "${TRAIN_RESUME_CHECKPOINT+set}" ]
  assert [ -z "${TRAIN_RESUME_RUN_ID_SOURCE+set}" ]
  assert_equal "$WANDB_RESUME" allow
  run cat "$WORK/log"
  assert_line 'train-resume: 🔧 unset WANDB_RUN_ID (set by an earlier decision of ours)'
}

@test "a new run leaves a WANDB_RUN_ID the user set" {
  export WANDB_RUN_ID=users-own
  wandb_resume::configure -o "$OUT" 2>/dev/null
  assert_equal "$WANDB_RUN_ID" users-own
}

@test "an empty WANDB_RUN_ID is unset, since W&B would fail on it" {
  export WANDB_RUN_ID=''
  wandb_resume::configure -o "$OUT" 2>"$WORK/log"
  assert [ -z "${WANDB_RUN_ID+set}" ]
  run cat "$WORK/log"
  assert_line 'train-resume: 🔧 unset WANDB_RUN_ID (empty run id: W&B would refuse to start with it)'
}

@test "--explain exports nothing" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  wandb_resume::configure -o "$OUT" --explain 2>"$WORK/log"
  assert [ -z "${WANDB_RUN_ID+set}" ]
  assert [ -z "${WANDB_RESUME+set}" ]
  assert [ -z "${TRAIN_RESUME_CHECKPOINT+set}" ]
  run cat "$WORK/log"
  assert_line --partial 'train-resume: 🔧 would export WANDB_RUN_ID='
}

@test "--explain says it would unset a bad WANDB_RUN_ID, and leaves it" {
  export WANDB_RUN_ID=''
  wandb_resume::configure -o "$OUT" --explain 2>"$WORK/log"
  assert [ -n "${WANDB_RUN_ID+set}" ]
  run cat "$WORK/log"
  assert_line 'train-resume: 🔧 would unset WANDB_RUN_ID (empty run id: W&B would refuse to start with it; --explain: nothing changed)'
}

@test "a failed decision exports nothing" {
  export WANDB_RESUME=before
  run -1 wandb_resume::configure -o "$OUT" -c "$OUT/checkpoint-404"
  wandb_resume::configure -o "$OUT" -c "$OUT/checkpoint-404" 2>/dev/null || true
  assert_equal "$WANDB_RESUME" before
  assert [ -z "${WANDB_RUN_ID+set}" ]
  assert [ -z "${TRAIN_RESUME_CHECKPOINT+set}" ]
}

@test "the library takes options only: a stray argument is a usage error" {
  run -2 --separate-stderr wandb_resume::configure -o "$OUT" python train.py
  assert_stderr --partial 'unexpected argument: python'
}

@test "logs in the seed's Chinese when LANG starts with zh" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  LANG=zh_CN.UTF-8 wandb_resume::configure -o "$OUT" 2>"$WORK/log"
  run cat "$WORK/log"
  assert_line "train-resume: 🔄 检测到checkpoint恢复: $OUT/checkpoint-4 ($OUT 中最新的完整checkpoint)"
  assert_line "train-resume: 🔧 设置环境变量: WANDB_RUN_ID=$WANDB_RUN_ID"
  assert_line 'train-resume: ✅ WandB恢复配置完成!'
}

@test "logs in Chinese when WANDB_RESUME_LANG=zh, and in English when it is en" {
  WANDB_RESUME_LANG=zh wandb_resume::configure -o "$OUT" 2>"$WORK/log"
  run cat "$WORK/log"
  assert_line "train-resume: 🆕 开始新的训练会话 ($OUT 尚不存在)"
  LC_ALL=zh_CN.UTF-8 WANDB_RESUME_LANG=en wandb_resume::configure -o "$OUT" 2>"$WORK/log"
  run cat "$WORK/log"
  assert_line --partial 'train-resume: 🆕 new training run'
}

@test "--quiet logs nothing but errors" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  wandb_resume::configure -o "$OUT" --quiet 2>"$WORK/log"
  assert [ -n "$WANDB_RUN_ID" ]
  assert [ ! -s "$WORK/log" ]
  run -1 --separate-stderr wandb_resume::configure -q -o "$OUT" -c /nowhere
  assert_stderr --partial '❌ error: checkpoint /nowhere'
}

@test "puts the Python bootstrap and the package first on PYTHONPATH, once" {
  export PYTHONPATH="/their own:/x"
  wandb_resume::configure -o "$OUT" 2>"$WORK/log"
  assert_equal "$PYTHONPATH" "$ROOT/train_resume/bootstrap:$ROOT:/their own:/x"
  assert [ -f "${PYTHONPATH%%:*}/sitecustomize.py" ]
  run cat "$WORK/log"
  assert_line "train-resume: 🔧 export PYTHONPATH=$PYTHONPATH"
  # A second decision in the same shell does not add them again.
  cp -R "$FIXTURES/trl-run" "$OUT"
  wandb_resume::configure -o "$OUT" 2>"$WORK/log"
  assert_equal "$PYTHONPATH" "$ROOT/train_resume/bootstrap:$ROOT:/their own:/x"
  run cat "$WORK/log"
  refute_line --partial 'PYTHONPATH'
}

@test "sets PYTHONPATH when it was unset, with no trailing empty entry" {
  unset PYTHONPATH
  wandb_resume::configure -o "$OUT" 2>/dev/null
  assert_equal "$PYTHONPATH" "$ROOT/train_resume/bootstrap:$ROOT"
}

@test "sourced by a relative path with ./ and ..: PYTHONPATH holds the tidy absolute root, wherever the caller cd's" {
  unset PYTHONPATH
  ln -s "$ROOT" "$WORK/link"
  # shellcheck disable=SC2016 # expanded by the inner bash
  run -0 bash -c 'cd "$1" && source ./link/bin/../lib/./wandb_resume.sh && cd / &&
    wandb_resume::configure -q -o "$2" && printf "%s\n" "$PYTHONPATH"' _ "$WORK" "$OUT"
  assert_output "$WORK/link/train_resume/bootstrap:$WORK/link"
}

@test "TRAIN_RESUME_HOOK=0 takes the bootstrap out of PYTHONPATH again, and unsets it when nothing is left" {
  unset PYTHONPATH
  wandb_resume::configure -o "$OUT" 2>/dev/null
  TRAIN_RESUME_HOOK=0 wandb_resume::configure -o "$OUT" 2>"$WORK/log"
  assert [ -z "${PYTHONPATH+set}" ]
  run cat "$WORK/log"
  assert_line 'train-resume: 🔧 unset PYTHONPATH (TRAIN_RESUME_HOOK=0: no Python hand-off)'
  export PYTHONPATH="$ROOT/train_resume/bootstrap:$ROOT::/x"
  TRAIN_RESUME_HOOK=0 wandb_resume::configure -o "$OUT" 2>/dev/null
  assert_equal "$PYTHONPATH" ':/x'
}

@test "--explain only says it would put the bootstrap on PYTHONPATH" {
  export PYTHONPATH=/x
  wandb_resume::configure -o "$OUT" --explain 2>"$WORK/log"
  assert_equal "$PYTHONPATH" /x
  run cat "$WORK/log"
  assert_line --partial "would export PYTHONPATH=$ROOT/train_resume/bootstrap:$ROOT:/x"
}

@test "TRAIN_RESUME_OUTPUT_DIR is the absolute output dir, on a resume and on a new run" {
  cp -R "$FIXTURES/trl-run" "$OUT"
  cd "$WORK" || return 1
  wandb_resume::configure -o out/ 2>"$WORK/log"
  assert_equal "$TRAIN_RESUME_OUTPUT_DIR" "$OUT"
  run cat "$WORK/log"
  assert_line "train-resume: 🔧 export TRAIN_RESUME_OUTPUT_DIR=$OUT"
  wandb_resume::configure -o ./fresh 2>/dev/null
  assert_equal "$TRAIN_RESUME_OUTPUT_DIR" "$WORK/fresh"
  assert [ -z "${TRAIN_RESUME_CHECKPOINT+set}" ]
}

@test "a decision without an output dir (--checkpoint none alone) unsets TRAIN_RESUME_OUTPUT_DIR" {
  export TRAIN_RESUME_OUTPUT_DIR=/an/earlier/one
  wandb_resume::configure --checkpoint none 2>"$WORK/log"
  assert [ -z "${TRAIN_RESUME_OUTPUT_DIR+set}" ]
  run cat "$WORK/log"
  assert_line 'train-resume: 🔧 unset TRAIN_RESUME_OUTPUT_DIR (no output dir)'
}
