#!/usr/bin/env bats
# Saved means saved by every rank: train_resume's callback records a save
# (OUTPUT_DIR/.train-resume/saved/checkpoint-N) only after every rank has finished
# it, so a checkpoint newer than the oldest recorded one that has no record of its own
# is a save that did not finish (lib/wandb_resume/saved.bash _unfinished_save).
# The kill itself, between rank 0's trainer_state.json and the end of another rank's
# save, is made real in tests/python/test_job.py.
# The record holds what the decision needs, checked by the library when it is
# written (wandb_resume::record_save); while the files match it the decision reads
# nothing else, and any difference has them checked again (saved.bash _record_holds).
# shellcheck disable=SC2016 # single-quoted scripts are expanded by the inner shell
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
}

# Record CHECKPOINT as saved, with the callback's own code. Arguments: CHECKPOINT
record_save() {
  PYTHONPATH=$ROOT python3 -c 'import sys; from train_resume.callback import record_save
record_save(sys.argv[1])' "$1"
}

@test "a checkpoint newer than the recorded saves, without a record of its own, did not finish: passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  make_state "$OUT/checkpoint-6" 6
  record_save "$OUT/checkpoint-2"
  record_save "$OUT/checkpoint-4"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  assert_equal "$(field '.skipped[0].path')" "$OUT/checkpoint-6"
  assert_equal "$(field '.skipped[0].reason')" "its save did not finish on every rank: no save record, though the saves from checkpoint-2 on are recorded (.train-resume/saved/; the callback records a save once every rank has finished it): killed after rank 0 wrote trainer_state.json, before another rank (or the trainer's own extras, such as TRL's entropy_ctrl_state.json) had finished"
}

@test "checkpoints from before the records began keep today's checks" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  make_state "$OUT/checkpoint-6" 6
  record_save "$OUT/checkpoint-4"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  # checkpoint-4 gone (its record left behind): checkpoint-6 still did not finish,
  # checkpoint-2, older than every record, is judged by its files.
  rm -r "$OUT/checkpoint-4"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '[.skipped[].path] | join(" ")')" "$OUT/checkpoint-6"
}

@test "an output dir without save records (a run without the callback) keeps today's checks" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
  assert_equal "$(field '.skipped | length')" 0
}

@test "named explicitly, a save that did not finish is an error with the reason" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  record_save "$OUT/checkpoint-2"
  explain -o "$OUT" -c "$OUT/checkpoint-4"
  assert_failure 1
  assert_stderr --partial "checkpoint $OUT/checkpoint-4 (from --checkpoint) cannot be used: its save did not finish on every rank"
}

@test "none complete because the only new save did not finish: an error, nothing run" {
  make_state "$OUT/checkpoint-4" 4
  mkdir -p "$OUT/.train-resume/saved"
  : >"$OUT/.train-resume/saved/checkpoint-2"
  run -1 --separate-stderr "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial "1 checkpoint-N folder(s) in $OUT, none complete:"
  assert_stderr --partial "$OUT/checkpoint-4: its save did not finish on every rank"
  assert [ ! -e "$WORK/ran" ]
}

# The save record of CHECKPOINT. Arguments: CHECKPOINT
record_of() {
  printf '%s\n' "${1%/*}/.train-resume/saved/${1##*/}"
}

# Make the save record of CHECKPOINT match its files as they are now: its state, dir
# and entry lines get their current identities (a record that reached the disk while
# blocks of a file did not, or a forged one). Arguments: CHECKPOINT
restamp() {
  local ck=$1 rec line out='' fmt='%s %i %.9Y %.9Z' name
  rec=$(record_of "$ck")
  while IFS= read -r line; do
    case $line in
      'state '*) line="state $(stat -L -c "$fmt" -- "$ck/trainer_state.json")" ;;
      'dir '*) line="dir $(stat -L -c "$fmt" -- "$ck")" ;;
      'entry '*)
        name=${line#entry * * * * }
        line="entry $(stat -L -c "$fmt" -- "$ck/$name") $name"
        ;;
    esac
    out+=$line$'\n'
  done <"$rec"
  printf '%s' "$out" >"$rec"
}

# Log every run of TOOL... (then the real one) in $WORK/ran. Arguments: TOOL...
log_tools() {
  local tool
  for tool; do
    fake_tool_on "$tool" '*' "echo $tool >>'$WORK/ran'; break"
  done
  : >"$WORK/ran"
}

# Set a file's mtime back to what it was. Arguments: FILE MTIME (seconds.nanoseconds)
set_mtime() {
  touch -m -d "@$2" -- "$1"
}

@test "the save record holds what the decision needs, checked when it was written (format 2)" {
  make_state "$OUT/checkpoint-4" 4 '.stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "run-a1",
    wandb_project: "proj", wandb_entity: "team", wandb_step: 57}, attributes: {resume_count: 0}}'
  record_save "$OUT/checkpoint-4"
  local fmt='%s %i %.9Y %.9Z' f
  local -a want=('train-resume-save-record 2'
    "state $(stat -c "$fmt" "$OUT/checkpoint-4/trainer_state.json")"
    'checked complete' 'global_step 4' 'max_steps 6' 'weights full'
    "kb $(du -sk "$OUT/checkpoint-4" | cut -f 1)"
    "id stateful_callbacks.WandbResumeCallback.args.wandb_run_id"$'\t'"string"$'\t'"run-a1"$'\t'"57"$'\t'"proj"$'\t'"team"
    "dir $(stat -c "$fmt" "$OUT/checkpoint-4")")
  for f in "$OUT"/checkpoint-4/*; do
    want+=("entry $(stat -c "$fmt" "$f") ${f##*/}")
  done
  want+=(end)
  assert_equal "$(cat "$(record_of "$OUT/checkpoint-4")")" "$(printf '%s\n' "${want[@]}")"
  assert [ ! -e "$OUT/checkpoint-4/.train-resume" ] # nothing of ours inside
}

@test "under a save record that matches, the decision reads the record: no jq, only stat, the NUL grep and df" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4 '.log_history |= map(. + {pad: "0123456789012345678901234567890123456789"})
    | .stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "run-a1", wandb_step: 57}, attributes: {}}'
  explain -o "$OUT"
  assert_success
  local checked=$output
  record_save "$OUT/checkpoint-2"
  record_save "$OUT/checkpoint-4"
  log_tools jq head tail od dd du tr cmp sed awk cut grep stat df mv mkdir
  PATH="$WORK/fakebin:$PATH" explain -o "$OUT"
  assert_success
  assert_equal "$output" "$checked"
  assert_equal "$(sort -u "$WORK/ran" | tr '\n' ' ')" 'df grep stat '
  assert_equal "$(wc -l <"$WORK/ran")" 3
  # A grep without -P (PCRE): the NUL grep again with -F, the record still answers.
  fake_tool_on grep -P "echo grep -P >>'$WORK/ran'; echo 'grep: Perl matching not supported' >&2; exit 2"
  : >"$WORK/ran"
  PATH="$WORK/fakebin:$PATH" explain -o "$OUT"
  assert_success
  assert_equal "$output" "$checked"
  assert_equal "$(sort "$WORK/ran" | tr '\n' ' ')" 'df grep -P stat '
  # A grep that fails (-P and -F): the NUL check under the record is not known, so
  # the record does not answer (never trusted blind); the checks without it fail on
  # the same grep: our error, exit 1, nothing decided.
  fake_tool_on grep -q "echo grep -q >>'$WORK/ran'; exit 2"
  : >"$WORK/ran"
  PATH="$WORK/fakebin:$PATH" explain -o "$OUT"
  assert_failure 1
  assert_stderr --partial 'grep failed (exit 2)'
  (($(grep -c -x 'grep -q' "$WORK/ran") >= 3))
}

@test "NUL bytes under a save record that matches are still found (what a crash leaves in blocks never written)" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  record_save "$OUT/checkpoint-2"
  record_save "$OUT/checkpoint-4"
  dd if=/dev/zero of="$OUT/checkpoint-4/trainer_state.json" bs=1 seek=100 count=64 conv=notrunc status=none
  restamp "$OUT/checkpoint-4"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].path')" "$OUT/checkpoint-4"
  assert_equal "$(field '.skipped[0].reason')" 'NUL bytes in trainer_state.json (a save cut short by a crash?)'
  # A grep without -P (PCRE) looks for them with -F: the same.
  fake_tool_on grep -P 'echo "grep: Perl matching not supported in a --disable-perl-regexp build" >&2; exit 2'
  PATH="$WORK/fakebin:$PATH" explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" 'NUL bytes in trainer_state.json (a save cut short by a crash?)'
}

@test "a file changed in place with its mtime set back no longer matches its save record (ctime): checked, passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  record_save "$OUT/checkpoint-2"
  record_save "$OUT/checkpoint-4"
  local f=$OUT/checkpoint-4/optimizer.pt mtime size
  mtime=$(stat -c %.9Y "$f") size=$(stat -c %s "$f")
  sleep 0.01
  # The zip end record overwritten, same size, mtime as it was.
  printf 'XXXXXXXXXXXXXXXXXXXXXX' | dd of="$f" bs=1 seek=$((size - 22)) conv=notrunc status=none
  set_mtime "$f" "$mtime"
  assert_equal "$(stat -c '%s %.9Y' "$f")" "$size $mtime"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" 'optimizer.pt: the zip file torch wrote has no end record (truncated?)'
}

@test "a file replaced by another of the same size and mtime no longer matches its save record (inode): checked, passed over" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  record_save "$OUT/checkpoint-2"
  record_save "$OUT/checkpoint-4"
  local f=$OUT/checkpoint-4/model.safetensors dir=$OUT/checkpoint-4 dir_mtime
  dir_mtime=$(stat -c %.9Y "$dir")
  # Another copy, its header length damaged (same size), with the old mtime, renamed over it.
  cp -p "$f" "$WORK/other"
  printf '\377\377\377\377' | dd of="$WORK/other" bs=1 seek=0 conv=notrunc status=none
  touch -m -r "$f" "$WORK/other"
  mv "$WORK/other" "$f"
  set_mtime "$dir" "$dir_mtime"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_regex "$(field '.skipped[0].reason')" '^model.safetensors: safetensors header length [0-9]+ does not fit the file'
}

@test "a save record that no longer matches is never trusted: another checkpoint's, edited, cut short, of another format" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  record_save "$OUT/checkpoint-2"
  record_save "$OUT/checkpoint-4"
  local rec good
  rec=$(record_of "$OUT/checkpoint-4")
  good=$(cat "$rec")
  # The weights of checkpoint-4 damaged (a truncated optimizer.pt): only its files say so.
  truncate -s 1000 "$OUT/checkpoint-4/optimizer.pt"
  local -a forged=(
    "$(sed 's/^global_step 4$/global_step 4/' "$rec")"        # the record as it was
    "$(cat "$(record_of "$OUT/checkpoint-2")")"               # checkpoint-2's
    "$(sed '/optimizer.pt$/d' "$rec")"                        # one entry left out
    "$(sed '$d' "$rec")"                                      # cut short (no end)
    "$(sed '1s/ 2$/ 3/' "$rec")"                              # a format to come
    "$(head -n 1 "$rec")"                                     # the header alone
    "$(sed 's/^checked complete$/checked unsure: x/' "$rec")" # vouching for nothing
  )
  local text
  for text in "${forged[@]}"; do
    printf '%s\n' "$text" >"$rec"
    explain -o "$OUT"
    assert_success
    assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
    assert_equal "$(field '.skipped[0].reason')" 'optimizer.pt: the zip file torch wrote has no end record (truncated?)'
  done
  # A record whose identities match files whose global_step it misstates: the folder's
  # name is checked against it, and a mismatch is not trusted either.
  printf '%s\n' "$good" >"$rec"
  restamp "$OUT/checkpoint-4"
  sed -i 's/^global_step 4$/global_step 9/' "$rec"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" 'optimizer.pt: the zip file torch wrote has no end record (truncated?)'
}

@test "a save record of the old format (trainer_state.json's identity alone) is read as before: the ends of a large state, the rest checked" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-3000" 3000 '.log_history |= map(. + {pad: "0123456789012345678901234567890123456789"})
    | .stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "old-id"}, attributes: {}}'
  local f=$OUT/checkpoint-3000/trainer_state.json at
  # Garbage in the middle before the record: a record vouches for the state as saved,
  # and only its ends are read.
  at=$(grep -a -b -o -F '"step": 1500' "$f") && at=${at%%:*}
  printf 'GARBAGE!!!!!' | dd of="$f" bs=1 seek="$at" conv=notrunc status=none
  mkdir -p "$OUT/.train-resume/saved"
  stat -c '%s %i %.9Y %.9Z' "$f" >"$OUT/.train-resume/saved/checkpoint-3000"
  stat -c '%s %i %.9Y %.9Z' "$OUT/checkpoint-2/trainer_state.json" >"$OUT/.train-resume/saved/checkpoint-2"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-3000"
  assert_equal "$(field .run_id)" old-id
  # The weights are not vouched for: checked.
  truncate -s 1000 "$OUT/checkpoint-3000/optimizer.pt"
  explain -o "$OUT"
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" 'optimizer.pt: the zip file torch wrote has no end record (truncated?)'
}

@test "a weights-only checkpoint under its save record: passed over as without one, taken with --allow-weights-only" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  rm "$OUT"/checkpoint-4/{optimizer.pt,scheduler.pt,rng_state.pth}
  explain -o "$OUT"
  local checked=$output
  record_save "$OUT/checkpoint-2"
  record_save "$OUT/checkpoint-4"
  grep -qx 'weights only' "$(record_of "$OUT/checkpoint-4")"
  explain -o "$OUT"
  assert_success
  assert_equal "$output" "$checked"
  assert_equal "$(field '.skipped[0].reason')" 'weights only (saved with save_only_model: no optimizer.pt, scheduler.pt or rng_state.pth): the trainer would go on with a fresh optimizer and scheduler, a different run; --allow-weights-only resumes from it anyway'
  explain -o "$OUT" --allow-weights-only
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "a checkpoint not complete as saved: a warning at the save, the record says why, a restart passes it over" {
  make_state "$OUT/checkpoint-2" 2
  STATE_ONLY=1 make_state "$OUT/checkpoint-4" 4
  record_save "$OUT/checkpoint-2"
  run -0 --separate-stderr record_save "$OUT/checkpoint-4"
  local why='no model weights (model.safetensors, adapter_model.safetensors, a sharded index, pytorch_model.bin, FSDP or DeepSpeed folders)'
  assert_stderr --partial "$OUT/checkpoint-4, just saved, is not complete for a resume: $why (a restart passes it over)"
  assert_equal "$(sed -n 3p "$(record_of "$OUT/checkpoint-4")")" "checked incomplete: $why"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_equal "$(field '.skipped[0].reason')" "$why"
}

@test "--wandb-rewind under a save record: the wandb_step it recorded beside the run id" {
  make_state "$OUT/checkpoint-4" 4 '.stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "run-a1",
    wandb_project: "p", wandb_entity: null, wandb_step: 57}, attributes: {resume_count: 0}}'
  record_save "$OUT/checkpoint-4"
  mkdir -p "$WORK/bin"
  printf '%s\n' '#!/usr/bin/env bash' 'printf "%s\n" 0.31.0' >"$WORK/bin/python3" # the trainer's wandb
  chmod +x "$WORK/bin/python3"
  log_tools jq
  PATH="$WORK/bin:$WORK/fakebin:$PATH" explain -o "$OUT" --wandb-rewind
  assert_success
  assert_equal "$(field .wandb_resume_from)" 'run-a1?_step=57'
  assert_equal "$(cat "$WORK/ran")" ''
}

@test "a failed-load record wins over a save record that matches" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  record_save "$OUT/checkpoint-2"
  record_save "$OUT/checkpoint-4"
  mkdir -p "$OUT/.train-resume/failed"
  sleep 0.01
  echo 'RuntimeError: size mismatch' >"$OUT/.train-resume/failed/checkpoint-4"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert_regex "$(field '.skipped[0].reason')" '^the trainer failed to load it: RuntimeError: size mismatch'
}

# A stat on PATH ($WORK/fakebin) that, when it is the save record's probe (its first
# file is a record's temporary file: "now" on the file system's clock), shows
# trainer_state.json's ctime as the probe's: a file written in the current tick. Only
# for the first TIMES probes (every one when not given). Arguments: [TIMES]
stat_in_the_same_tick() {
  mkdir -p "$WORK/fakebin"
  : >"$WORK/probes"
  cat >"$WORK/fakebin/stat" <<EOF
#!/bin/bash
out=\$($(command -v stat) "\$@") || exit
ops=("\${@:5}")
if [[ \${ops[0]:-} == */.train-resume/saved/.* ]]; then
  echo >>'$WORK/probes'
  if ((\$(wc -l <'$WORK/probes') <= ${1:-1000000})); then
    mapfile -t lines <<<"\$out"
    now=\${lines[0]##* }
    for i in "\${!ops[@]}"; do
      [[ \${ops[i]} == */trainer_state.json ]] && lines[i]="\${lines[i]% *} \$now"
    done
    printf '%s\n' "\${lines[@]}"
    exit
  fi
fi
printf '%s\n' "\$out"
EOF
  chmod +x "$WORK/fakebin/stat"
}

@test "a save record vouches for nothing written in the tick of its check: it waits for the file clock to pass, or says so" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  # The first two probes see trainer_state.json written in their tick: the third passes.
  stat_in_the_same_tick 2
  PATH="$WORK/fakebin:$PATH" record_save "$OUT/checkpoint-2"
  assert_equal "$(wc -l <"$WORK/probes")" 3
  assert_equal "$(sed -n 3p "$(record_of "$OUT/checkpoint-2")")" 'checked complete'
  # Every probe does (a ctime in the future: the clock set back): nothing vouched for.
  stat_in_the_same_tick
  run -0 --separate-stderr env PATH="$WORK/fakebin:$PATH" bash -c 'source "$1"; wandb_resume::record_save "$2"' \
    _ "$LIB" "$OUT/checkpoint-4"
  assert_equal "$(wc -l <"$WORK/probes")" 8
  assert_stderr --partial "$OUT/checkpoint-4: its save record vouches only for trainer_state.json (the file system's clock did not pass the save's last write): a restart checks the rest again"
  assert_equal "$(sed -n 3p "$(record_of "$OUT/checkpoint-4")")" "checked unsure: the file system's clock did not pass the save's last write"
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-4"
}

@test "wandb_resume::record_save: records each checkpoint given, nothing for a folder without trainer_state.json" {
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  mkdir -p "$OUT/checkpoint-6"
  run -0 --separate-stderr bash -c 'source "$1"; shift; wandb_resume::record_save "$@"' _ "$LIB" \
    "$OUT/checkpoint-2" "$OUT/checkpoint-4" "$OUT/checkpoint-6"
  assert_stderr ''
  assert_equal "$(ls "$OUT/.train-resume/saved")" $'checkpoint-2\ncheckpoint-4'
  run -2 --separate-stderr bash -c 'source "$1"; wandb_resume::record_save' _ "$LIB"
  assert_stderr 'usage: wandb_resume::record_save CHECKPOINT...'
}
