#!/usr/bin/env bats
# --wandb-rewind: WANDB_RESUME_FROM=<id>?_step=<n> from the checkpoint's recorded
# wandb_step instead of WANDB_RESUME, and each fallback to WANDB_RESUME with its line.
# A stub python3 on PATH stands for the trainer's Python: it reports $STUB_WANDB
# as the installed wandb version (none when empty).
# shellcheck disable=SC2030,SC2031 # each @test is its own subshell: exports stay in it, by design
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
  unset WANDB_RESUME_FROM WANDB_MODE
  mkdir -p "$WORK/bin"
  # shellcheck disable=SC2016 # the stub's own code, expanded when it runs
  printf '%s\n' '#!/usr/bin/env bash' '[[ -n ${STUB_WANDB:-} ]] || exit 1' 'printf "%s\n" "$STUB_WANDB"' \
    >"$WORK/bin/python3"
  chmod +x "$WORK/bin/python3"
  export PATH="$WORK/bin:$PATH" STUB_WANDB=0.31.0
}

# A checkpoint whose callback recorded run ID at wandb_step STEP (null: none).
# Arguments: DIR GLOBAL_STEP ID STEP
saved_with() {
  make_state "$1" "$2" ".stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: \"$3\",
    wandb_project: \"p\", wandb_entity: null, wandb_step: $4}, attributes: {resume_count: 0}}"
}

@test "--wandb-rewind resumes from the recorded _step: WANDB_RESUME_FROM, no WANDB_RESUME (--json)" {
  saved_with "$OUT/checkpoint-8" 8 run-a1 57
  explain -o "$OUT" --sources trainer-state --wandb-rewind
  assert_success
  assert_equal "$(field .wandb_resume_from)" 'run-a1?_step=57'
  assert_equal "$(field .wandb_resume)" null
  assert_equal "$(field '.warnings | length')" 0
  [[ $stderr == *'would export WANDB_RESUME_FROM=run-a1?_step=57 '* ]]
  [[ $stderr != *'would export WANDB_RESUME='* ]]
}

@test "--wandb-rewind exports WANDB_RESUME_FROM and unsets a WANDB_RESUME set before" {
  saved_with "$OUT/checkpoint-8" 8 run-a1 57
  export WANDB_RESUME=allow
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
  wandb_resume::configure -o "$OUT" --sources trainer-state --wandb-rewind 2>"$WORK/log"
  assert_equal "$WANDB_RESUME_FROM" 'run-a1?_step=57'
  assert_equal "$WANDB_RUN_ID" run-a1
  assert [ -z "${WANDB_RESUME+set}" ]
  run cat "$WORK/log"
  assert_line 'train-resume: 🔧 unset WANDB_RESUME (W&B refuses it together with WANDB_RESUME_FROM)'
  assert_line --partial '⏪ --wandb-rewind: the W&B run rewinds to _step 57'
}

@test "without --wandb-rewind a WANDB_RESUME_FROM left in the shell is unset (W&B refuses both)" {
  saved_with "$OUT/checkpoint-8" 8 run-a1 57
  export WANDB_RESUME_FROM='run-a1?_step=3'
  # shellcheck source=lib/wandb_resume.sh
  source "$LIB"
  wandb_resume::configure -o "$OUT" --sources trainer-state 2>/dev/null
  assert_equal "$WANDB_RESUME" must
  assert [ -z "${WANDB_RESUME_FROM+set}" ]
}

@test "--wandb-rewind falls back to WANDB_RESUME with a warning when the checkpoint recorded no _step" {
  saved_with "$OUT/checkpoint-8" 8 run-a1 null
  explain -o "$OUT" --sources trainer-state --wandb-rewind
  assert_success
  assert_equal "$(field .wandb_resume_from)" null
  assert_equal "$(field .wandb_resume)" must
  assert_equal "$(field '.warnings[0]')" \
    "--wandb-rewind: $OUT/checkpoint-8/trainer_state.json records no W&B _step (wandb_step) for run run-a1 (saved without train-resume's callback, or before W&B logged a row); resuming without a rewind: WANDB_RESUME=must"
}

@test "--wandb-rewind uses only a _step recorded beside the run id it resumes" {
  saved_with "$OUT/checkpoint-8" 8 run-b2 57
  WANDB_RUN_ID=run-a1 explain -o "$OUT" --sources env --wandb-rewind
  assert_equal "$(field .run_id)" run-a1
  assert_equal "$(field .wandb_resume_from)" null
  assert_equal "$(field .wandb_resume)" must
}

@test "--wandb-rewind falls back when the installed wandb is older than 0.17.1" {
  saved_with "$OUT/checkpoint-8" 8 run-a1 57
  STUB_WANDB=0.16.6 explain -o "$OUT" --sources trainer-state --wandb-rewind
  assert_equal "$(field .wandb_resume_from)" null
  assert_equal "$(field '.warnings[0]')" \
    '--wandb-rewind: wandb 0.16.6 cannot rewind (needs >= 0.17.1); resuming without a rewind: WANDB_RESUME=must'
}

@test "--wandb-rewind offline needs wandb 0.20.0 (the rewind is applied at sync)" {
  saved_with "$OUT/checkpoint-8" 8 run-a1 57
  WANDB_MODE=offline STUB_WANDB=0.19.11 explain -o "$OUT" --sources trainer-state --wandb-rewind
  assert_equal "$(field .wandb_resume_from)" null
  assert_equal "$(field '.warnings[0]')" \
    '--wandb-rewind: wandb 0.19.11 cannot rewind in offline mode (needs >= 0.20.0); resuming without a rewind: WANDB_RESUME=must'
  STUB_WANDB=0.19.11 explain -o "$OUT" --sources trainer-state --wandb-rewind
  assert_equal "$(field .wandb_resume_from)" 'run-a1?_step=57'
}

@test "--wandb-rewind falls back when no wandb is found" {
  saved_with "$OUT/checkpoint-8" 8 run-a1 57
  STUB_WANDB='' explain -o "$OUT" --sources trainer-state --wandb-rewind
  assert_equal "$(field .wandb_resume_from)" null
  assert_equal "$(field '.warnings[0]')" \
    '--wandb-rewind: wandb not found by python3, cannot check it rewinds (needs >= 0.17.1); resuming without a rewind: WANDB_RESUME=must'
}

@test "--wandb-rewind asks the Python of COMMAND for the wandb version" {
  saved_with "$OUT/checkpoint-8" 8 run-a1 57
  printf '%s\n' '#!/usr/bin/env bash' 'printf "0.17.0\n"' >"$WORK/bin/python3.11"
  chmod +x "$WORK/bin/python3.11"
  explain -o "$OUT" --sources trainer-state --wandb-rewind -- "$WORK/bin/python3.11" train.py
  assert_equal "$(field .wandb_resume_from)" null
  assert_equal "$(field '.warnings[0]')" \
    '--wandb-rewind: wandb 0.17.0 cannot rewind (needs >= 0.17.1); resuming without a rewind: WANDB_RESUME=must'
}

@test "--wandb-rewind on a new run changes nothing" {
  explain -o "$OUT" --wandb-rewind
  assert_equal "$(field .wandb_resume)" allow
  assert_equal "$(field .wandb_resume_from)" null
  assert_equal "$(field '.warnings | length')" 0
}

@test "--wandb-rewind reads the recorded _step at the tail of a large trainer_state.json" {
  saved_with "$OUT/checkpoint-8" 8 run-a1 57
  jq -S --indent 2 '.log_history = [range(3000) | {loss: 0.5, step: 1, note: "padding padding"}]' \
    "$OUT/checkpoint-8/trainer_state.json" >"$WORK/big.json"
  mv "$WORK/big.json" "$OUT/checkpoint-8/trainer_state.json"
  explain -o "$OUT" --sources trainer-state --wandb-rewind
  assert_equal "$(field .wandb_resume_from)" 'run-a1?_step=57'
}

@test "a resume in offline mode warns when wandb is older than 0.31 (the version it was verified with)" {
  saved_with "$OUT/checkpoint-8" 8 run-a1 57
  WANDB_MODE=offline STUB_WANDB=0.30.2 explain -o "$OUT" --sources trainer-state
  assert_success
  assert_equal "$(field .wandb_resume)" must
  assert_equal "$(field '.warnings[0]')" \
    'wandb 0.30.2 is older than 0.31.0, the version the offline resume was verified with (WANDB_MODE=offline): how it numbers a resumed segment'"'"'s rows and how wandb sync appends them may differ; check with train-resume sync --dry-run'
}

@test "no wandb version warning online, or offline with wandb 0.31 or newer" {
  saved_with "$OUT/checkpoint-8" 8 run-a1 57
  STUB_WANDB=0.30.2 explain -o "$OUT" --sources trainer-state
  assert_equal "$(field '.warnings | length')" 0
  WANDB_MODE=offline STUB_WANDB=0.31.0 explain -o "$OUT" --sources trainer-state
  assert_equal "$(field '.warnings | length')" 0
  WANDB_MODE=offline STUB_WANDB=1.2.0rc1 explain -o "$OUT" --sources trainer-state
  assert_equal "$(field '.warnings | length')" 0
}

@test "--wandb-rewind offline asks for the wandb version once" {
  saved_with "$OUT/checkpoint-8" 8 run-a1 57
  # shellcheck disable=SC2016 # the stub's own code, expanded when it runs
  printf '%s\n' '#!/usr/bin/env bash' 'printf x >>"$WORK/asked"' 'printf "0.31.0\n"' >"$WORK/bin/python3"
  export WORK
  WANDB_MODE=offline explain -o "$OUT" --sources trainer-state --wandb-rewind
  assert_equal "$(field .wandb_resume_from)" 'run-a1?_step=57'
  assert_equal "$(cat "$WORK/asked")" x
}
