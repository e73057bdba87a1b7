#!/usr/bin/env bats
# The documentation's snippets run as written: every block of README.md and docs/*.md
# whose fence says `sh runnable` is run by bash in a scratch dir, with OUT a scratch
# output dir (its path holds a space), PATH starting with this clone's bin/ (so
# `train-resume --lib` is this clone's library), no SLURM, and a stand-in trainer
# train.py (docs/development.md, "Tested snippets"). A wrong path or a wrong option
# in a snippet fails here. Also: the README stays a front page, and its restart log real.
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
  BLOCKS=$BATS_TEST_TMPDIR/blocks
}

# Write each runnable block of FILE... to $BLOCKS/<n>.sh, and "FILE:LINE" (the line of
# its opening fence) to $BLOCKS/<n>.where. A fence is closed only by a fence at least
# as long (a ```sh runnable shown inside a ````markdown block is not a block).
extract_blocks() {
  mkdir -p "$BLOCKS"
  awk -v dir="$BLOCKS" '
    FNR == 1 { fence = "" }
    fence == "" && match($0, /^```+/) {
      fence = substr($0, 1, RLENGTH)
      info = substr($0, RLENGTH + 1)
      run = info ~ /^sh runnable[[:space:]]*$/
      if (run) {
        n++
        file = sprintf("%s/%03d.sh", dir, n)
        printf "%s:%d\n", FILENAME, FNR >(sprintf("%s/%03d.where", dir, n))
        printf "" >file
      }
      next
    }
    fence != "" && index($0, fence) == 1 && $0 ~ /^`+[[:space:]]*$/ {
      if (run) close(file)
      fence = ""
      run = 0
      next
    }
    run { print >>file }
  ' "$@"
}

# The stand-in trainer: it trains nothing; it appends its arguments and the decision it
# was handed (the exports a real Trainer's hand-off reads) to $SNIPPET_TRAINER_LOG.
write_trainer() {
  cat >"$1/train.py" <<'EOF'
import os
import sys

with open(os.environ["SNIPPET_TRAINER_LOG"], "a") as log:
    print(
        "argv=" + " ".join(sys.argv[1:]),
        "output_dir=" + os.environ.get("TRAIN_RESUME_OUTPUT_DIR", ""),
        "resume=" + os.environ.get("WANDB_RESUME", ""),
        sep="|",
        file=log,
    )
EOF
}

# Run block N in a scratch dir of its own (cwd: the dir holding train.py; OUT:
# "<dir>/runs/my run"), as `bash -e -o pipefail`, stdout and stderr apart. Sets
# DIR, SNIPPET_OUT and SNIPPET_TRAINER_LOG. Arguments: N
run_block() {
  DIR="$BATS_TEST_TMPDIR/block $1"
  SNIPPET_OUT="$DIR/runs/my run"
  SNIPPET_TRAINER_LOG=$DIR/trainer.log
  mkdir -p "$DIR/runs"
  write_trainer "$DIR"
  cd "$DIR" || return 1
  run --separate-stderr env PATH="$ROOT/bin:$ROOT/.venv/bin:$PATH" OUT="$SNIPPET_OUT" \
    SNIPPET_TRAINER_LOG="$SNIPPET_TRAINER_LOG" bash -e -o pipefail "$BLOCKS/$1.sh"
}

@test "every runnable block of README.md and docs/*.md runs as written" {
  extract_blocks "$ROOT/README.md" "$ROOT"/docs/*.md
  local f n where failed=0 count=0 readme=0
  for f in "$BLOCKS"/*.sh; do
    n=${f##*/} n=${n%.sh}
    where=$(<"$BLOCKS/$n.where")
    count=$((count + 1))
    [[ $where == "$ROOT/README.md:"* ]] && readme=$((readme + 1))
    run_block "$n"
    if ((status != 0)); then
      printf '%s: exit %s\n--- block\n%s\n--- stdout\n%s\n--- stderr\n%s\n\n' \
        "${where#"$ROOT/"}" "$status" "$(<"$f")" "$output" "$stderr"
      failed=$((failed + 1))
    elif grep -q 'train\.py' "$f" && [[ ! -s $SNIPPET_TRAINER_LOG ]]; then
      printf '%s: exit 0, but the trainer it starts never ran\n--- stderr\n%s\n\n' \
        "${where#"$ROOT/"}" "$stderr"
      failed=$((failed + 1))
    fi
  done
  ((count >= 5 && readme >= 2)) ||
    fail "$count runnable blocks found, $readme in README.md (it has 2, docs/ 3: a marker lost?)"
  ((failed == 0)) || fail "$failed of $count runnable blocks failed"
}

@test "every runnable block passes shellcheck (what readers copy is quoted as they should write it)" {
  extract_blocks "$ROOT/README.md" "$ROOT"/docs/*.md
  local f where failed=0
  for f in "$BLOCKS"/*.sh; do
    where=$(<"${f%.sh}.where")
    # SC1090: the library's path is known only when it runs ($(train-resume --lib)).
    run "$ROOT/.venv/bin/shellcheck" -s bash -e SC1090 "$f"
    if ((status != 0)); then
      printf '%s:\n%s\n\n' "${where#"$ROOT/"}" "$output"
      failed=$((failed + 1))
    fi
  done
  ((failed == 0)) || fail "$failed runnable blocks have shellcheck findings"
}

@test "the README is a front page: at most 200 lines, the sbatch recipe runnable within the first 80" {
  local length first
  length=$(wc -l <"$ROOT/README.md")
  ((length <= 200)) || fail "README.md has $length lines (at most 200: details go to docs/)"
  first=$(grep -n -m1 '^#SBATCH' "$ROOT/README.md" | cut -d: -f1)
  [[ -n $first ]] || fail "README.md has no sbatch recipe (no #SBATCH line)"
  ((first <= 80)) || fail "the sbatch recipe starts at line $first of README.md (within 80)"
  extract_blocks "$ROOT/README.md"
  run -0 grep -l '^#SBATCH' "$BLOCKS"/*.sh
  assert [ "${#lines[@]}" -eq 1 ]
  # shellcheck disable=SC2016 # the $(...) is the text grep looks for, not to expand
  run -0 grep -c -e '^source "$(train-resume --lib)"$' -e '^wandb_resume::configure ' \
    -e '^wandb_resume::supervise ' "${lines[0]}"
  assert_output 3
}

@test "the README's sbatch recipe, run without SLURM, decides, runs the trainer under supervise and leaves DONE" {
  extract_blocks "$ROOT/README.md"
  local recipe
  recipe=$(grep -l '^#SBATCH' "$BLOCKS"/*.sh)
  recipe=${recipe##*/}
  run_block "${recipe%.sh}"
  assert_success
  assert_stderr --partial "🆕 new training run"
  assert [ -f "$SNIPPET_OUT/DONE" ]
  run -0 cat "$SNIPPET_TRAINER_LOG"
  assert_output "argv=--output_dir $SNIPPET_OUT|output_dir=$SNIPPET_OUT|resume=allow"
  # Started again (a late requeue): DONE is there, nothing runs.
  run_block "${recipe%.sh}"
  assert_success
  assert_stderr --partial "DONE exists: the run is finished; nothing to run"
  run -0 grep -c . "$SNIPPET_TRAINER_LOG"
  assert_output 1
}

# The README's restart log with what varies from run to run made plain: the project
# dir (PROJ), the job's pid and start time, the clone's path on PYTHONPATH.
# Arguments: PROJ. Input: the log on stdin.
plain_log() {
  sed -E -e "s|$1|/tmp/proj|g" -e 's/pid-[0-9]+\.[0-9]+@[^ ]+/pid-N/' \
    -e 's|PYTHONPATH=.*/train_resume/bootstrap:.*|PYTHONPATH=ROOT|'
}

@test "the README's restart log is what bin/train-resume prints on that tree" {
  local proj=$BATS_TEST_TMPDIR/proj s
  # The tree: checkpoint-10 and -20 saved by a run reporting to W&B run k3v9x2qa,
  # checkpoint-30 cut short (its weights, no trainer_state.json), the run's W&B folder.
  for s in 10 20; do
    make_state "$proj/runs/my-run/checkpoint-$s" "$s" '.max_steps = 100 |
      .stateful_callbacks.WandbResumeCallback = {attributes: {}, args: {wandb_run_id: "k3v9x2qa",
      wandb_project: "grpo", wandb_entity: null, wandb_step: ('"$s"' * 7)}}'
  done
  mkdir "$proj/runs/my-run/checkpoint-30"
  cp "$proj/runs/my-run/checkpoint-20/model.safetensors" "$proj/runs/my-run/checkpoint-30/"
  make_run "$proj/runs/my-run/wandb" run-20261201_190512-k3v9x2qa k3v9x2qa
  cat >"$proj/train.py" <<'PY'
import os
import sys

print(
    "train.py",
    " ".join(sys.argv[1:]),
    "| resume from",
    os.environ.get("TRAIN_RESUME_CHECKPOINT"),
    "W&B run",
    os.environ.get("WANDB_RUN_ID"),
)
PY
  cd "$proj" || return 1
  # shellcheck disable=SC2016 # the command as the README shows it, expanded by bash -c
  run -0 --separate-stderr env PATH="$ROOT/bin:$ROOT/.venv/bin:$PATH" bash -c \
    'OUT=$PWD/runs/my-run && train-resume -o "$OUT" -- python train.py --output_dir "$OUT" 2>&1'
  local actual expected
  actual=$(plain_log "$proj" <<<"$output")
  expected=$(awk '/^## What a restart prints/ { on = 1 } on && /^```$/ { if (inside) exit; inside = 1; next }
    inside' "$ROOT/README.md" | plain_log "$proj")
  [[ -n $expected ]] || fail "no log block under README.md's \"What a restart prints\""
  assert_equal "$actual" "$expected"
}
