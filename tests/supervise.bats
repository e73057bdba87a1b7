#!/usr/bin/env bats
# wandb_resume::supervise outside SLURM: DONE, signal forwarding, crashes, manners.
# (The requeue itself is tested against a real SLURM: tests/slurm/test_slurm.py.)
# shellcheck disable=SC2016 # single-quoted scripts are expanded by the inner shell
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
  unset SLURM_JOB_ID SLURM_ARRAY_JOB_ID SLURM_ARRAY_TASK_ID SLURM_RESTART_COUNT
  export OUT
  mkdir -p "$OUT"
}

# A fake scontrol on PATH that records its arguments in $OUT/scontrol.log.
fake_scontrol() {
  mkdir -p "$WORK/bin"
  printf '#!/bin/sh\nprintf "%%s\\n" "$*" >>"$OUT/scontrol.log"\n' >"$WORK/bin/scontrol"
  chmod +x "$WORK/bin/scontrol"
  export PATH="$WORK/bin:$PATH"
}

# Write $WORK/trainer.sh, a stand-in for a trainer with the callback: it saves
# $WORK/saved as checkpoint-STEP, leaves the end record (FIELDS: NAME=VALUE words;
# job and time added), then runs SHELL_CODE (its end). Arguments: STEP FIELDS SHELL_CODE
fake_trainer() {
  cat >"$WORK/trainer.sh" <<SH
mv "\$WORK/saved" "\$OUT/checkpoint-$1"
mkdir -p "\$OUT/.train-resume"
printf '%s\\n' $2 job=slurm-42-r0 time=1 >"\$OUT/.train-resume/ended"
$3
SH
}

# supervise (SLURM job 42, fake scontrol) a stand-in trainer: fake_trainer STEP FIELDS
# SHELL_CODE, its checkpoint made at STEP of max_steps MAX.
# Arguments: STEP MAX FIELDS SHELL_CODE
supervise_fake_trainer() {
  fake_scontrol
  make_state "$WORK/saved" "$1" ".max_steps = $2"
  fake_trainer "$1" "$3" "$4"
  SLURM_JOB_ID=42 WORK=$WORK in_bash 'wandb_resume::supervise -o "$OUT" -- bash "$WORK/trainer.sh"'
}

# Run bash SCRIPT with the library sourced; stdout and stderr apart.
in_bash() {
  run --separate-stderr bash -c 'source "$1"; shift; eval "$1"' _ "$LIB" "$1"
}

@test "a command that finishes writes DONE in the output dir" {
  in_bash 'wandb_resume::supervise -o "$OUT" -- true'
  assert_success
  assert [ -f "$OUT/DONE" ]
  assert_stderr --partial "✅ finished: wrote $OUT/DONE; this run will not be requeued"
}

@test "with DONE in the output dir it runs nothing" {
  : >"$OUT/DONE"
  in_bash 'wandb_resume::supervise -o "$OUT" -- touch "$OUT/ran"'
  assert_success
  assert [ ! -e "$OUT/ran" ]
  assert_stderr --partial "✅ $OUT/DONE exists: the run is finished; nothing to run, nothing to requeue"
}

@test "forwards the signal to the command, waits for it, and does not call it finished" {
  in_bash '
    wandb_resume::supervise -o "$OUT" -- bash -c "trap \"touch \\\"\$OUT/saved\\\"; exit 0\" USR1; sleep 30 & wait" &
    sup=$!
    sleep 1
    kill -USR1 "$sup"
    wait "$sup"'
  assert_success
  assert [ -f "$OUT/saved" ]
  assert [ ! -e "$OUT/DONE" ]
  assert_stderr --partial '⏸ got SIGUSR1: asking the trainer to save and stop'
  assert_stderr --partial '⏹ stopped by SIGUSR1 (exit 0), no progress: newest checkpoint still none; not under SLURM: not requeued'
}

@test "--signal USR2 forwards USR2 instead of USR1" {
  in_bash '
    wandb_resume::supervise --signal USR2 -- bash -c "trap \"touch \\\"\$OUT/usr2\\\"; exit 0\" USR2; sleep 30 & wait" &
    sup=$!
    sleep 1
    kill -USR2 "$sup"
    wait "$sup"'
  assert_success
  assert [ -f "$OUT/usr2" ]
  assert_stderr --partial '⏸ got SIGUSR2: asking the trainer to save and stop'
}

@test "a crash passes its exit status through and says why it stopped" {
  make_state "$OUT/checkpoint-2" 2
  in_bash 'wandb_resume::supervise -o "$OUT" -- bash -c "exit 3"'
  assert_failure 3
  assert_stderr --partial '⏹ crashed (exit 3), no progress: newest checkpoint still checkpoint-2; not under SLURM: not requeued'
  assert [ ! -e "$OUT/DONE" ]
}

@test "puts the caller's traps and options back" {
  in_bash '
    set -u; trap "echo mine" USR1; trap "echo term" TERM
    before=$(trap -p; echo "$-")
    wandb_resume::supervise -o "$OUT" -- true 2>/dev/null
    after=$(trap -p; echo "$-")
    [[ $before == "$after" ]] && echo same'
  assert_output same
}

@test "the command gets the caller's locale, not the library's C locale" {
  in_bash 'export LC_ALL=C.UTF-8; wandb_resume::supervise -- printenv LC_ALL'
  assert_output C.UTF-8
}

@test "supervise usage errors return 2" {
  in_bash 'wandb_resume::supervise -o "$OUT"'
  assert_failure 2
  assert_stderr --partial 'supervise: no COMMAND to supervise'
  in_bash 'wandb_resume::supervise --max-restarts x -- true'
  assert_failure 2
  in_bash 'wandb_resume::supervise --signal KILL -- true'
  assert_failure 2
  assert_stderr --partial '--signal must be USR1, USR2, TERM, INT or HUP, not: KILL'
}

@test "a trainer that stopped on a signal (exit 128+N) is preempted: requeued, never DONE" {
  fake_scontrol
  make_state "$OUT/checkpoint-2" 2
  make_state "$WORK/saved" 4
  # It saves checkpoint-4, then ends on USR1 (as the callback does: exit 138).
  SLURM_JOB_ID=42 SLURM_RESTART_COUNT=1 WORK=$WORK in_bash \
    'wandb_resume::supervise -o "$OUT" -- bash -c "mv \"\$WORK/saved\" \"\$OUT/checkpoint-4\"; kill -USR1 \$\$"'
  assert_failure 138
  assert [ ! -e "$OUT/DONE" ]
  assert_equal "$(cat "$OUT/scontrol.log")" 'requeue 42'
  assert_stderr --partial '🔁 preempted: the trainer saved and stopped on SIGUSR1 (exit 138), newest checkpoint now checkpoint-4; requeued job 42 (restart 2 of at most 5)'
}

@test "exit 0 before max_steps is not finished: no DONE, requeued" {
  fake_scontrol
  make_state "$OUT/checkpoint-2" 2
  SLURM_JOB_ID=42 in_bash 'wandb_resume::supervise -o "$OUT" -- true'
  assert_success
  assert [ ! -e "$OUT/DONE" ]
  assert_equal "$(cat "$OUT/scontrol.log")" 'requeue 42'
  assert_stderr --partial '🔁 exited 0 before the end: checkpoint-2 is at step 2 of max_steps 6, no progress: newest checkpoint still checkpoint-2; requeued job 42'
}

@test "exit 0 with the newest checkpoint at max_steps is finished: DONE, no requeue" {
  fake_scontrol
  make_state "$OUT/checkpoint-6" 6 '.max_steps = 6'
  SLURM_JOB_ID=42 in_bash 'wandb_resume::supervise -o "$OUT" -- true'
  assert_success
  assert [ -f "$OUT/DONE" ]
  assert [ ! -e "$OUT/scontrol.log" ]
}

@test "exit 0 with a checkpoint whose max_steps cannot be read is not called finished" {
  make_state "$OUT/checkpoint-6" 6 'del(.max_steps)'
  in_bash 'wandb_resume::supervise -o "$OUT" -- true'
  assert_success
  assert [ ! -e "$OUT/DONE" ]
  assert_stderr --partial 'exited 0, but checkpoint-6/trainer_state.json has no whole global_step and max_steps: cannot tell that it finished'
}

@test "hostile SLURM numbers are errors: never evaluated, nothing run, the caller goes on" {
  local v
  for v in x 1.5 'x[$(touch pwned)]' '$(touch pwned2)' '-1' '1 + 1' "$(printf '9%.0s' {1..19})"; do
    SLURM_RESTART_COUNT=$v in_bash 'set -e; wandb_resume::supervise -o "$OUT" -- touch "$OUT/ran" || echo "returned $?"; echo still here'
    assert_success
    assert_output $'returned 1\nstill here'
    assert_stderr "train-resume: ❌ error: supervise: SLURM_RESTART_COUNT='$v': not a number; nothing run"
  done
  SLURM_JOB_ID='1;touch pwned3' in_bash 'wandb_resume::supervise -- touch "$OUT/ran"'
  assert_failure 1
  assert_stderr --partial "SLURM_JOB_ID='1;touch pwned3': not a number"
  SLURM_ARRAY_JOB_ID=7 SLURM_ARRAY_TASK_ID='a[$(touch pwned4)]' in_bash 'wandb_resume::supervise -- true'
  assert_failure 1
  run find "$WORK" "$HOME" -name 'pwned*' -o -name ran
  assert_output ''
}

@test "SLURM numbers with leading zeros are read in base 10" {
  fake_scontrol
  SLURM_JOB_ID=042 SLURM_RESTART_COUNT=08 in_bash 'wandb_resume::supervise --max-restarts 09 -- false'
  assert_failure 1
  assert_stderr --partial 'requeued job 42 (restart 9 of at most 9)'
}

@test "a DONE that cannot be written is an error with the reason" {
  open_workdir
  mkdir -p "$OUT"
  chmod 555 "$OUT"
  run --separate-stderr as_nobody bash -c 'source "$1"; wandb_resume::supervise -o "$2" -- true' _ "$LIB" "$OUT"
  cleanup_workdir
  assert_failure 1
  assert_stderr --partial "❌ error: finished, but cannot write $OUT/DONE: permission denied (owner root:root dr-xr-xr-x; running as nobody)"
  refute_stderr --partial 'wrote'
}

@test "under set -m it waits for the command and forwards the signal to its whole process group" {
  cat >"$WORK/worker.sh" <<'SH'
trap 'touch "$OUT/worker saved"; exit 138' USR1
sleep 30 &
wait
SH
  # A launcher (as torchrun) whose worker, not itself, saves on the signal.
  cat >"$WORK/launcher.sh" <<'SH'
trap 'touch "$OUT/launcher got it"' USR1
bash "$WORK/worker.sh" &
w=$!
wait "$w"
rc=$?
((rc > 128)) && ! [[ -e "$OUT/worker saved" ]] && { wait "$w"; rc=$?; }
sleep 1
touch "$OUT/launcher finished"
exit "$rc"
SH
  WORK=$WORK in_bash '
    set -m
    [[ $- == *m* ]] || exit 9
    (sleep 1; kill -USR1 $$) &
    wandb_resume::supervise -o "$OUT" -- bash "$WORK/launcher.sh"
    echo "returned $?"'
  assert_success
  assert_output 'returned 138'
  assert [ -f "$OUT/worker saved" ]
  assert [ -f "$OUT/launcher got it" ]
  assert [ -f "$OUT/launcher finished" ]
  assert [ ! -e "$OUT/DONE" ]
  assert_stderr --partial '⏹ stopped by SIGUSR1 (exit 138)'
}

@test "under set -m a command that finishes is waited for before DONE" {
  in_bash '
    set -m
    wandb_resume::supervise -o "$OUT" -- bash -c "sleep 1; touch \"\$OUT/trained\"" >/dev/null 2>&1
    echo "returned $?"
    [[ -e $OUT/trained ]] && echo "the command had finished"'
  assert_output $'returned 0\nthe command had finished'
  assert [ -f "$OUT/DONE" ]
}

@test "a TERM during the wrap-up (trainer gone, requeue not yet done) still ends in a requeue" {
  fake_scontrol
  # The trainer exits at once, leaving a process of its group behind for 5 s:
  # supervise waits for it, and gets the scheduler's TERM meanwhile.
  SLURM_JOB_ID=42 in_bash '
    (sleep 1.5; kill -TERM $$) &
    wandb_resume::supervise -o "$OUT" -- bash -c "sleep 5 & exit 143"
    echo "returned $?"'
  assert_success
  assert_output 'returned 143'
  assert_equal "$(cat "$OUT/scontrol.log")" 'requeue 42'
  assert_stderr --regexp "⏳ the trainer \\(pid [0-9]+\\) exited; waiting up to 60 s for the rest of its processes"
  assert_stderr --partial '🔁 preempted: the trainer saved and stopped on SIGTERM (exit 143), no progress: newest checkpoint still none; requeued job 42'
}

@test "the stop signal goes to every process of the trainer that catches it, workers in sessions of their own too, not to a launcher that dies of it" {
  # A launcher (as torchrun: USR1 would kill it) whose two workers run in sessions of
  # their own and save on USR1; it waits for them, then exits 1 as torchrun does.
  cat >"$WORK/worker.sh" <<'SH'
trap 'touch "$OUT/saved-$1"; exit 138' USR1
while :; do sleep 0.1; done
SH
  cat >"$WORK/launcher.sh" <<'SH'
setsid bash "$WORK/worker.sh" 1 &
setsid bash "$WORK/worker.sh" 2 &
wait
touch "$OUT/launcher finished"
exit 1
SH
  WORK=$WORK in_bash '
    (sleep 1.5; kill -USR1 $$) &
    wandb_resume::supervise -o "$OUT" -- bash "$WORK/launcher.sh"
    echo "returned $?"'
  assert_output 'returned 1'
  assert [ -f "$OUT/saved-1" ]
  assert [ -f "$OUT/saved-2" ]
  assert [ -f "$OUT/launcher finished" ]
  assert_stderr --regexp '⏸ got SIGUSR1: asking the trainer to save and stop \(SIGUSR1 to pid [0-9]+ [0-9]+: the processes of the trainer that catch it\)'
}

@test "when no process of the trainer catches the stop signal, its leader gets it" {
  in_bash '
    (sleep 1; kill -USR1 $$) &
    wandb_resume::supervise -o "$OUT" -- sleep 30
    echo "returned $?"'
  assert_output 'returned 138'
  assert_stderr --regexp '⏸ got SIGUSR1: asking the trainer to save and stop \(SIGUSR1 to pid [0-9]+: no process of the trainer catches it\)'
  assert_stderr --partial '⏹ stopped by SIGUSR1 (exit 138)'
}

@test "after the trainer exits, its other processes are waited for, then killed: none outlives the job" {
  # The leader stops on USR1; its worker, in a session of its own, takes USR1 and
  # goes on (a rank stuck in a collective): after the drain it is killed.
  cat >"$WORK/stuck.sh" <<'SH'
trap 'echo got >>"$OUT/worker got it"' USR1
echo $$ >"$OUT/worker.pid"
while :; do sleep 0.1; done
SH
  WORK=$WORK in_bash '
    _WANDB_RESUME_DRAIN=1
    (sleep 1.5; kill -USR1 $$) &
    wandb_resume::supervise -o "$OUT" -- bash -c "trap \"exit 138\" USR1; setsid bash \"\$WORK/stuck.sh\" & while :; do sleep 0.1; done"
    echo "returned $?"'
  assert_output 'returned 138'
  assert [ -f "$OUT/worker got it" ]
  local pid
  pid=$(cat "$OUT/worker.pid")
  assert_stderr --regexp "⏳ the trainer \\(pid [0-9]+\\) exited; waiting up to 1 s for the rest of its processes"
  assert_stderr --regexp "processes of the trainer were still running \\(.*$pid.*\\); killed them \\(SIGKILL\\), so that none outlives this job"
  run ps -o stat= -p "$pid"
  [[ -z $output || $output == Z* ]] # gone (or dead, not yet reaped by init)
}

@test "the command gets TRAIN_RESUME_STOP_SIGNALS: what supervise forwards, and TERM; unset, the callback takes the same" {
  in_bash 'wandb_resume::supervise -- printenv TRAIN_RESUME_STOP_SIGNALS'
  assert_output USR1,TERM
  local default
  default=$(PYTHONPATH=$ROOT python3 -c 'from train_resume.callback import DEFAULT_STOP_SIGNALS as d; print(d)')
  assert_equal "$default" USR1,TERM
  in_bash 'wandb_resume::supervise --signal USR2 -- printenv TRAIN_RESUME_STOP_SIGNALS'
  assert_output USR2,TERM
  in_bash 'wandb_resume::supervise --signal SIGTERM -- printenv TRAIN_RESUME_STOP_SIGNALS'
  assert_output TERM
}

@test "ranks that saved and stopped on a stop signal are preempted, whatever status their launcher gave" {
  make_state "$OUT/checkpoint-2" 2
  # As torchrun does: its ranks saved checkpoint-4, recorded the stop, exited 138;
  # torchrun itself exits 1.
  supervise_fake_trainer 4 6 'reason=signal signal=USR1 step=4' 'exit 1'
  assert_failure 1
  assert [ ! -e "$OUT/DONE" ]
  assert_equal "$(cat "$OUT/scontrol.log")" 'requeue 42'
  assert_stderr --partial "🔁 preempted: the trainer saved checkpoint-4 and stopped on SIGUSR1 (exit 1 from its launcher; recorded in $OUT/.train-resume/ended), newest checkpoint now checkpoint-4; requeued job 42"
}

@test "an end record left by an earlier run is not this run's: a crash is a crash" {
  mkdir -p "$OUT/.train-resume"
  printf 'reason=signal\nsignal=USR1\nstep=2\njob=x\ntime=1\n' >"$OUT/.train-resume/ended"
  in_bash 'wandb_resume::supervise -o "$OUT" -- bash -c "exit 1"'
  assert_failure 1
  assert_stderr --partial '⏹ crashed (exit 1), no progress'
}

@test "the end record is read as data: only known names, each value of its form" {
  mkdir -p "$OUT/.train-resume"
  printf '%s\n' 'reason=signal' 'signal=$(touch pwned)' 'step=12x' 'max_steps=$((1))' \
    'job=slurm-1-r0' 'time=17' 'evil=$(touch pwned2)' 'reason' >"$OUT/.train-resume/ended"
  in_bash 'wandb_resume::_guest wandb_resume::_read_ended "$OUT"
    printf "%s|" "$ended_reason" "$ended_signal" "$ended_step" "$ended_max" "$ended_job" "$ended_time" "$ended_why"'
  assert_output 'signal||||slurm-1-r0|17||'
  run find "$WORK" "$HOME" -name 'pwned*'
  assert_output ''
}

@test "the end record of a finished run is read with what it says; no further than 20 lines of 300 bytes" {
  mkdir -p "$OUT/.train-resume"
  printf '%s\n' 'reason=epochs' 'signal=TERM' 'step=8' 'max_steps=8' 'job=pid-1.2@h' 'time=3' >"$OUT/.train-resume/ended"
  in_bash 'wandb_resume::_guest wandb_resume::_read_ended "$OUT"
    printf "%s|" "$ended_reason" "$ended_signal" "$ended_step" "$ended_max" "$ended_job" "$ended_time" "$ended_why"'
  assert_output 'epochs|TERM|8|8|pid-1.2@h|3|the trainer ran its epochs (step 8 of max_steps 8); SIGTERM landed at that end|'
  {
    for _ in {1..20}; do printf 'x=%s\n' "$(printf 'y%.0s' {1..100})"; done
    printf 'reason=max_steps\n'
  } >"$OUT/.train-resume/ended"
  in_bash 'wandb_resume::_guest wandb_resume::_read_ended "$OUT"; printf "[%s] %s\n" "$ended_reason" "${#ended_text}"'
  assert_output '[] 2060'
  # One line of 1 MB, no newline: 20 reads of 300 bytes.
  head -c 1000000 /dev/zero | tr '\0' y >"$OUT/.train-resume/ended"
  in_bash 'wandb_resume::_guest wandb_resume::_read_ended "$OUT"; printf "[%s] %s\n" "$ended_reason" "${#ended_text}"'
  assert_output '[] 6020'
}

@test "a process of the job that catches the stop signal handles it for its helpers below it: they get nothing" {
  # A rank (a Python process of the job: registered by the hand-off) that catches USR1,
  # with a helper below it that catches USR1 too (as W&B's service process catches TERM).
  cat >"$WORK/rank.py" <<'PY'
import os, signal, subprocess, sys, time
out = os.environ["OUT"]
helper = subprocess.Popen(["bash", "-c", 'trap "touch \\"$0/helper got it\\"" USR1; while :; do sleep 0.1; done', out])
def stop(signum, frame):
    time.sleep(1)
    helper.kill()
    open(os.path.join(out, "rank got it"), "w").close()
    os._exit(138)
signal.signal(signal.SIGUSR1, stop)
open(os.path.join(out, "ready"), "w").close()
while True:
    time.sleep(0.1)
PY
  WORK=$WORK in_bash '
    wandb_resume::configure -q -o "$OUT" || exit 9
    (while [[ ! -e $OUT/ready ]]; do sleep 0.1; done; sleep 0.5; kill -USR1 $$) &
    wandb_resume::supervise -o "$OUT" -- python3 "$WORK/rank.py"
    echo "returned $?"'
  assert_output 'returned 138'
  assert [ -f "$OUT/rank got it" ]
  assert [ ! -e "$OUT/helper got it" ]
  assert_stderr --regexp '⏸ got SIGUSR1: asking the trainer to save and stop \(SIGUSR1 to pid [0-9]+: the processes'
}

@test "a trainer that ended by its own rule short of max_steps (its end record: should_training_stop) is finished: DONE, no requeue" {
  # As a Trainer with EarlyStoppingCallback does: it saves checkpoint-4, records why it
  # stopped (max_steps is 10), and exits 0.
  supervise_fake_trainer 4 10 'reason=should_training_stop step=4 max_steps=10' 'exit 0'
  assert_success
  assert [ -f "$OUT/DONE" ]
  assert [ ! -e "$OUT/scontrol.log" ]
  assert_stderr --partial "✅ finished: wrote $OUT/DONE; this run will not be requeued: the trainer stopped by its own rule before max_steps (step 4 of max_steps 10: should_training_stop, set by a callback such as EarlyStoppingCallback); exit 0; recorded in $OUT/.train-resume/ended"
}

@test "a stop signal that lands when training has ended (a finished end record; the launcher exits 1) is finished, not preempted" {
  fake_scontrol
  make_state "$WORK/saved" 6 '.max_steps = 6'
  # The trainer reached max_steps and recorded it; then the forwarded USR1 makes its
  # launcher exit 1 (as torchrun on TERM).
  fake_trainer 6 'reason=max_steps step=6 max_steps=6' \
    'trap "exit 1" USR1; touch "$OUT/ended now"; while :; do sleep 0.1; done'
  SLURM_JOB_ID=42 WORK=$WORK in_bash '
    wandb_resume::supervise -o "$OUT" -- bash "$WORK/trainer.sh" &
    while [[ ! -e $OUT/"ended now" ]]; do sleep 0.1; done
    kill -USR1 $!
    wait $!
    echo "returned $?"'
  assert_output 'returned 0'
  assert [ -f "$OUT/DONE" ]
  assert [ ! -e "$OUT/scontrol.log" ]
  assert_stderr --partial "this run will not be requeued: the trainer reached max_steps (step 6 of max_steps 6); exit 1 after SIGUSR1; recorded in $OUT/.train-resume/ended"
}

@test "a crash after training had ended (a finished end record, exit 1, no stop signal) is a crash: requeued, not DONE" {
  supervise_fake_trainer 6 6 'reason=max_steps step=6 max_steps=6' 'exit 1'
  assert_failure 1
  assert [ ! -e "$OUT/DONE" ]
  assert_equal "$(cat "$OUT/scontrol.log")" 'requeue 42'
  assert_stderr --partial "🔁 crashed (exit 1) after training had ended (the trainer reached max_steps (step 6 of max_steps 6)), newest checkpoint now checkpoint-6; requeued job 42"
}

@test "jq absent when supervise examines the result after the trainer: an error naming jq, neither DONE nor a requeue" {
  fake_scontrol
  make_state "$WORK/saved" 2
  # The trainer saves checkpoint-2 (of max_steps 6) and exits 0; before it, the
  # output dir held no checkpoint (nothing for jq to read).
  local path
  path="$WORK/bin:$(no_jq_path)"
  PATH=$path SLURM_JOB_ID=42 WORK=$WORK in_bash \
    'wandb_resume::supervise -o "$OUT" -- bash -c "mv \"\$WORK/saved\" \"\$OUT/checkpoint-2\""'
  assert_failure 1
  assert [ ! -e "$OUT/DONE" ]
  assert [ ! -e "$OUT/scontrol.log" ]
  assert_stderr --partial "❌ error: supervise: cannot tell how the trainer ended (it exited 0): jq not found on PATH"
  assert_stderr --partial 'neither DONE written nor requeued'
}

@test "jq crashing when supervise examines the result after the trainer: an error naming the crash, not DONE" {
  fake_scontrol
  make_state "$WORK/saved" 2
  fake_tool_on jq whole 'kill -SEGV $$'
  local path="$WORK/fakebin:$WORK/bin:$PATH"
  PATH=$path SLURM_JOB_ID=42 WORK=$WORK in_bash \
    'wandb_resume::supervise -o "$OUT" -- bash -c "mv \"\$WORK/saved\" \"\$OUT/checkpoint-2\""'
  assert_failure 1
  assert [ ! -e "$OUT/DONE" ]
  assert [ ! -e "$OUT/scontrol.log" ]
  assert_stderr --partial "❌ error: supervise: cannot tell how the trainer ended (it exited 0): reading $OUT/checkpoint-2/trainer_state.json: jq was killed by signal 11"
}

# A jq on PATH (a link to the real one, in $WORK/jqbin, before a PATH without jq)
# that the trainer can take away or break while it runs.
jq_the_trainer_breaks() {
  mkdir -p "$WORK/jqbin"
  ln -s "$(command -v jq)" "$WORK/jqbin/jq"
  printf '%s\n' "$WORK/jqbin:$WORK/bin:$(no_jq_path)"
}

@test "jq present at the start but gone when supervise examines the result: an error, not DONE (a trainer that exited 0 at step 2 of 6)" {
  fake_scontrol
  make_state "$OUT/checkpoint-2" 2
  PATH=$(jq_the_trainer_breaks) SLURM_JOB_ID=42 WORK=$WORK in_bash \
    'wandb_resume::supervise -o "$OUT" -- rm "$WORK/jqbin/jq"'
  assert_failure 1
  assert [ ! -e "$WORK/jqbin/jq" ]
  assert [ ! -e "$OUT/DONE" ]
  assert [ ! -e "$OUT/scontrol.log" ]
  assert_stderr --partial "❌ error: supervise: cannot tell how the trainer ended (it exited 0): jq not found on PATH"
}

@test "jq present at the start but crashing when supervise examines the result: an error, not DONE" {
  fake_scontrol
  make_state "$OUT/checkpoint-2" 2
  PATH=$(jq_the_trainer_breaks) SLURM_JOB_ID=42 WORK=$WORK in_bash '
    wandb_resume::supervise -o "$OUT" -- bash -c "
      rm \"\$WORK/jqbin/jq\"
      printf \"#!/bin/bash\nkill -SEGV \\\$\\\$\n\" >\"\$WORK/jqbin/jq\"
      chmod +x \"\$WORK/jqbin/jq\""'
  assert_failure 1
  assert [ ! -e "$OUT/DONE" ]
  assert [ ! -e "$OUT/scontrol.log" ]
  assert_stderr --partial "❌ error: supervise: cannot tell how the trainer ended (it exited 0): reading $OUT/checkpoint-2/trainer_state.json: jq was killed by signal 11"
}

@test "jq absent before the trainer, with checkpoints to read: an error naming jq, nothing run" {
  make_state "$OUT/checkpoint-2" 2
  PATH=$(no_jq_path) in_bash 'wandb_resume::supervise -o "$OUT" -- touch "$OUT/ran"'
  assert_failure 1
  assert [ ! -e "$OUT/ran" ]
  assert_stderr --partial "❌ error: supervise: cannot read the checkpoints in $OUT: jq not found on PATH"
  assert_stderr --partial '; nothing run'
}

@test "the newest checkpoint unreadable when supervise examines the result: an error naming owner, mode and user, not DONE" {
  open_workdir
  make_state "$OUT/checkpoint-2" 2
  make_state "$OUT/checkpoint-4" 4
  mkdir -m 777 "$WORK/flags"
  # As root, beside the unprivileged job: once its trainer asks, checkpoint-4 becomes
  # root's alone (mode 700), as a save by another user would leave it.
  (
    for _ in {1..600}; do
      [[ -e $WORK/flags/ask ]] && chmod 700 "$OUT/checkpoint-4" && touch "$WORK/flags/done" && break
      sleep 0.05
    done
  ) &
  run --separate-stderr as_nobody bash -c 'source "$1"; wandb_resume::supervise -o "$2" -- bash -c "
      touch \"\$0/ask\"
      for _ in {1..600}; do [[ -e \$0/done ]] && break; sleep 0.05; done" "$3"' _ "$LIB" "$OUT" "$WORK/flags"
  wait
  cleanup_workdir
  assert_failure 1
  assert_stderr --partial "❌ error: supervise: cannot tell how the trainer ended (it exited 0): cannot read $OUT/checkpoint-4, the checkpoint the decision would take: permission denied (owner root:root drwx------; running as nobody)"
  refute_stderr --partial 'wrote'
}

# A complete checkpoint-2 (of max_steps 6) whose trainer_state.json carries W&B run
# id "fromckpt", as the callback stores it: the decision exports WANDB_RUN_ID.
checkpoint_with_run_id() {
  make_state "$OUT/checkpoint-2" 2 \
    '.stateful_callbacks.WandbResumeCallback = {args: {wandb_run_id: "fromckpt"}, attributes: {}}'
}

# The state of each variable named: its declare -p line, or NAME unset.
SHOW='show() { local v; for v; do if [[ -n ${!v+set} ]]; then declare -p "$v"; else echo "$v unset"; fi; done; }'

@test "after supervise returns, WANDB_RUN_ID and WANDB_RESUME are what they were before configure: set, unset, empty" {
  checkpoint_with_run_id
  local script="$SHOW"'
    wandb_resume::configure -q -o "$OUT" || exit 9
    show WANDB_RUN_ID WANDB_RESUME
    wandb_resume::supervise -q -o "$OUT" -- printenv WANDB_RUN_ID WANDB_RESUME
    echo "returned $?"
    show WANDB_RUN_ID WANDB_RESUME'
  # Set (one exported, one a shell variable only).
  in_bash 'export WANDB_RUN_ID=mine; WANDB_RESUME=never; '"$script"
  assert_success
  assert_output 'declare -x WANDB_RUN_ID="fromckpt"
declare -x WANDB_RESUME="must"
fromckpt
must
returned 0
declare -x WANDB_RUN_ID="mine"
declare -- WANDB_RESUME="never"'
  # Unset.
  in_bash 'unset WANDB_RUN_ID WANDB_RESUME; '"$script"
  assert_success
  assert_output 'declare -x WANDB_RUN_ID="fromckpt"
declare -x WANDB_RESUME="must"
fromckpt
must
returned 0
WANDB_RUN_ID unset
WANDB_RESUME unset'
  # Empty (W&B refuses an empty WANDB_RUN_ID: the decision replaced it).
  in_bash 'export WANDB_RUN_ID= WANDB_RESUME=; '"$script"
  assert_success
  assert_output 'declare -x WANDB_RUN_ID="fromckpt"
declare -x WANDB_RESUME="must"
fromckpt
must
returned 0
declare -x WANDB_RUN_ID=""
declare -x WANDB_RESUME=""'
}

@test "after supervise, the decision's other variables are put back too, the job's stay, and one the script changed is its own" {
  checkpoint_with_run_id
  in_bash "$SHOW"'
    export PYTHONPATH=/mine WANDB_RESUME_FROM=old
    wandb_resume::configure -q -o "$OUT" || exit 9
    [[ $PYTHONPATH == */train_resume/bootstrap:*:/mine && -n $TRAIN_RESUME_CHECKPOINT ]] || exit 8
    export WANDB_RESUME=allow # the script'"'"'s own, after configure
    wandb_resume::supervise -o "$OUT" -- true
    show WANDB_RUN_ID WANDB_RESUME WANDB_RESUME_FROM PYTHONPATH TRAIN_RESUME_CHECKPOINT \
      TRAIN_RESUME_RUN_ID_SOURCE TRAIN_RESUME_OUTPUT_DIR
    [[ -n $TRAIN_RESUME_JOB && -n $TRAIN_RESUME_JOB_DIR ]] && echo "the job stays"'
  assert_success
  assert_output 'WANDB_RUN_ID unset
declare -x WANDB_RESUME="allow"
declare -x WANDB_RESUME_FROM="old"
declare -x PYTHONPATH="/mine"
TRAIN_RESUME_CHECKPOINT unset
TRAIN_RESUME_RUN_ID_SOURCE unset
TRAIN_RESUME_OUTPUT_DIR unset
the job stays'
  assert_stderr --partial '🔧 put back as they were before wandb_resume::configure: WANDB_RUN_ID,WANDB_RESUME_FROM,TRAIN_RESUME_CHECKPOINT,TRAIN_RESUME_RUN_ID_SOURCE,TRAIN_RESUME_OUTPUT_DIR,PYTHONPATH (a later wandb.init() in this script starts a run of its own)'
  assert_stderr --partial '🔧 changed by this script after wandb_resume::configure, left as it set them: WANDB_RESUME'
}

@test "the W&B variables are put back however supervise returns: DONE already there (nothing run), a crash" {
  checkpoint_with_run_id
  local script="$SHOW"'
    wandb_resume::configure -q -o "$OUT" || exit 9
    wandb_resume::supervise -q -o "$OUT" -- false
    echo "returned $?"
    show WANDB_RUN_ID WANDB_RESUME'
  in_bash "$script"
  assert_output 'returned 1
WANDB_RUN_ID unset
WANDB_RESUME unset'
  : >"$OUT/DONE"
  in_bash "$script"
  assert_output 'returned 0
WANDB_RUN_ID unset
WANDB_RESUME unset'
}

@test "configured again after supervise, the variables are remembered again from then on" {
  checkpoint_with_run_id
  in_bash "$SHOW"'
    wandb_resume::configure -q -o "$OUT" || exit 9
    wandb_resume::supervise -q -o "$OUT" -- true
    export WANDB_RUN_ID=between
    wandb_resume::configure -q -o "$OUT" || exit 9
    wandb_resume::supervise -q -o "$OUT" -- true
    show WANDB_RUN_ID WANDB_RESUME'
  assert_success
  assert_output 'declare -x WANDB_RUN_ID="between"
WANDB_RESUME unset'
}

@test "after supervise, a wandb.init() later in the job script starts a W&B run of its own (real wandb, offline)" {
  [[ -x $ROOT/.venv/bin/python ]] || skip 'no .venv with wandb'
  checkpoint_with_run_id
  PY=$ROOT/.venv/bin/python in_bash '
    export WANDB_MODE=offline WANDB_DIR=$OUT WANDB_SILENT=true
    wandb_resume::configure -q -o "$OUT" || exit 9
    wandb_resume::supervise -q -o "$OUT" -- printenv WANDB_RUN_ID
    "$PY" -c "import wandb; run = wandb.init(project=\"eval\"); print(\"evaluation run\", run.id == \"fromckpt\"); run.finish()"'
  assert_success
  assert_output $'fromckpt\nevaluation run False'
}
