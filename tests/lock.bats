#!/usr/bin/env bats
# One job per output dir (lib/wandb_resume/lock.bash, job.bash): the lock belongs to a
# job, its state lives beside the output dir (<parent>/.train-resume/<name>/), every
# task of the owning job gets in and shares one decision, another job is refused while
# a registered process of the owning job is alive.
# shellcheck disable=SC2030,SC2031,SC2016 # each @test is its own subshell; single-quoted scripts are the inner shell's
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
  make_state "$OUT/checkpoint-2" 2
  JOBDIR=$WORK/.train-resume/out
  BG=''
  STRAY=''
}

teardown() {
  local pid
  for pid in $BG $STRAY; do kill "$pid" 2>/dev/null || true; done
  cleanup_workdir
}

# Start `train-resume -o OUT -- sleep 30` in the background as a task of SLURM job
# JOB (more VAR=VALUE for its environment may follow), and wait until its
# registration is there. Sets: BG (its pid, which the exec keeps: the trainer's).
start_holder() {
  local job=$1 i
  shift
  env SLURM_JOB_ID="$job" "$@" "$TR" -o "$OUT" -q -- sleep 30 &
  BG=$!
  for ((i = 0; i < 100; i++)); do
    [[ -n $(registrations) && $(ps -o comm= -p "$BG") == sleep ]] && return 0
    sleep 0.1
  done
  return 1
}

# The names of the registrations in the job state dir, one a line.
registrations() {
  local f
  for f in "$JOBDIR"/procs/*; do [[ -e $f ]] && printf '%s\n' "${f##*/}"; done
}

# The registration name of process PID: <pid>.<start>@<host>.
registration_of() {
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }
  read -r -a f <<<"$stat"
  printf '%s.%s@%s\n' "$1" "${f[19]}" "$(uname -n)"
}

@test "a new run leaves the output dir as it found it: absent stays absent, empty stays empty" {
  rm -r "$OUT"
  run -0 --separate-stderr "$TR" -o "$OUT" -- true
  assert_stderr --partial 'does not exist yet'
  assert [ ! -e "$OUT" ]
  # The job's state lives beside it, in <parent>/.train-resume/<name>/.
  assert [ -f "$JOBDIR/lock" ]
  assert [ -f "$JOBDIR/job" ]
  assert [ -d "$JOBDIR/procs" ]
  mkdir "$OUT"
  run -0 --separate-stderr "$TR" -o "$OUT" -- true
  assert_stderr --partial "no checkpoint in $OUT"
  run ls -A "$OUT"
  assert_output ''
}

@test "the job state dir is beside the output dir's physical path, not the symlink's" {
  mkdir "$WORK/real"
  ln -s real "$WORK/link"
  run -0 --separate-stderr "$TR" -o "$WORK/link/out" -- printenv TRAIN_RESUME_JOB_DIR
  assert_output "$WORK/real/.train-resume/out"
}

@test "another job on the output dir: exit 1 at once, its host, job and live pid named, nothing run" {
  start_holder 4242
  run -1 --separate-stderr "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial "output dir $OUT is in use by job slurm-4242-r0 (host $(uname -n), pid $BG sleep alive; $JOBDIR): two jobs would write into the same folders"
  refute_stderr --partial 'resuming from checkpoint'
  assert [ ! -e "$WORK/ran" ]
  # A SLURM job of another id, and a requeued instance of the same job, are other jobs.
  run -1 --separate-stderr env SLURM_JOB_ID=4343 "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial 'in use by job slurm-4242-r0'
  run -1 --separate-stderr env SLURM_JOB_ID=4242 SLURM_RESTART_COUNT=1 "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial 'in use by job slurm-4242-r0'
  assert [ ! -e "$WORK/ran" ]
  # The refused ones took nothing: the owner is still the first job.
  assert_equal "$(cut -d ' ' -f 1 "$JOBDIR/job")" slurm-4242-r0
}

@test "tasks of one job (one SLURM_JOB_ID, other task ids) get in and get the same decision" {
  start_holder 4242 SLURM_PROCID=0 SLURM_STEP_ID=0
  run -0 --separate-stderr env SLURM_JOB_ID=4242 SLURM_PROCID=1 SLURM_STEP_ID=0 \
    "$TR" -o "$OUT" -- printenv TRAIN_RESUME_CHECKPOINT TRAIN_RESUME_JOB
  assert_output "$OUT/checkpoint-2"$'\n'slurm-4242-r0
  assert_stderr --partial "🤝 using the decision of job slurm-4242-r0, made by pid $BG on $(uname -n) (same job and step, same checkpoints)"
  assert_stderr --partial "🔄 resuming from checkpoint: $OUT/checkpoint-2 (the decision of job slurm-4242-r0)"
  refute_stderr --partial 'skipping'
}

@test "the lock is held by the registered processes of the job: the trainer's own pid, through the exec" {
  start_holder 4242
  assert_equal "$(registrations)" "$(registration_of "$BG")"
  assert_equal "$(cat "$JOBDIR/procs/$(registration_of "$BG")")" slurm-4242-r0
  read -r key host pid _ <"$JOBDIR/job"
  assert_equal "$key $host $pid" "slurm-4242-r0 $(uname -n) $BG"
  local name
  name=$(registration_of "$BG")
  kill "$BG"
  wait "$BG" || true
  BG=''
  # Its processes are gone: the next job gets in, and the dead registration is removed.
  run -0 --separate-stderr env SLURM_JOB_ID=4343 "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert [ -e "$WORK/ran" ]
  run registrations
  refute_output --partial "$name"
  assert_equal "$(cut -d ' ' -f 1 "$JOBDIR/job")" slurm-4343-r0
}

@test "a stray background child of a wrapper does not keep the lock" {
  run -0 "$TR" -o "$OUT" -q -- bash -c 'sleep 30 >/dev/null 2>&1 & echo $!'
  STRAY=$output
  # The child holds copies of the launcher's descriptors, but is not registered.
  assert [ -e "/proc/$STRAY" ]
  run -0 --separate-stderr env SLURM_JOB_ID=4343 "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert [ -e "$WORK/ran" ]
}

@test "--explain takes no lock and writes nothing, not even the job state dir" {
  explain -o "$OUT"
  assert_success
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert [ ! -e "$WORK/.train-resume" ]
  start_holder 4242
  explain -o "$OUT"
  assert_success
}

@test "--no-lock runs beside another job, and exports no job" {
  start_holder 4242
  run -0 --separate-stderr env TRAIN_RESUME_JOB=x TRAIN_RESUME_JOB_DIR=y "$TR" -o "$OUT" --no-lock -- \
    bash -c 'touch "$1"; printenv TRAIN_RESUME_JOB TRAIN_RESUME_JOB_DIR || echo unset' _ "$WORK/ran"
  assert [ -e "$WORK/ran" ]
  assert_output unset
  assert_stderr --partial '🔧 unset TRAIN_RESUME_JOB (no lock: no job)'
}

@test "the sourced library: wandb_resume::lock registers the shell for its job" {
  start_holder 4242
  run -1 --separate-stderr bash -c 'source "$1/lib/wandb_resume.sh" && wandb_resume::lock "$2"' _ "$ROOT" "$OUT"
  assert_stderr --partial "is in use by job slurm-4242-r0 (host $(uname -n), pid $BG "
  kill "$BG"
  wait "$BG" || true
  BG=''
  run -0 bash -c 'source "$1/lib/wandb_resume.sh" && wandb_resume::lock "$2" &&
    [[ -e "$3/procs/$$.$(cut -d " " -f 22 /proc/$$/stat)@$(uname -n)" ]] &&
    [[ $TRAIN_RESUME_JOB == pid-$$.* && $TRAIN_RESUME_JOB_DIR == "$3" ]] && echo registered' \
    _ "$ROOT" "$OUT" "$JOBDIR"
  assert_output registered
}

@test "configure in a job script takes the lock; the script's own train-resume is the same job and uses its decision" {
  run -0 --separate-stderr bash -c '
    source "$1/lib/wandb_resume.sh"
    wandb_resume::configure -q -o "$2" || exit 9
    echo "$TRAIN_RESUME_JOB"
    "$1/bin/train-resume" -o "$2" -- printenv TRAIN_RESUME_JOB TRAIN_RESUME_CHECKPOINT' _ "$ROOT" "$OUT"
  assert_line --index 0 --regexp '^pid-[0-9]+\.[0-9]+@'
  assert_line --index 1 "${lines[0]}"
  assert_line --index 2 "$OUT/checkpoint-2"
  assert_stderr --partial "🤝 using the decision of job ${lines[0]}"
}

@test "an inherited TRAIN_RESUME_JOB is the same job only while the process that made it lives" {
  sleep 30 &
  STRAY=$!
  local token
  token=pid-$(registration_of "$STRAY")
  run -0 env TRAIN_RESUME_JOB="$token" "$TR" -o "$OUT" -q -- printenv TRAIN_RESUME_JOB
  assert_output "$token"
  kill "$STRAY"
  wait "$STRAY" || true
  STRAY=''
  run -0 env TRAIN_RESUME_JOB="$token" "$TR" -o "$OUT" -q -- printenv TRAIN_RESUME_JOB
  refute_output "$token"
  assert_output --regexp '^pid-[0-9]+\.[0-9]+@'
  # Another host's, or not a token of ours: a new one.
  run -0 env TRAIN_RESUME_JOB='pid-1.1@elsewhere' "$TR" -o "$OUT" -q -- printenv TRAIN_RESUME_JOB
  refute_output 'pid-1.1@elsewhere'
}

@test "the job's decision file is data: never run, a value of another form is decided anew" {
  SLURM_JOB_ID=77 run -0 "$TR" -o "$OUT" -q -- true
  local -a d
  mapfile -d '' -t d <"$JOBDIR/decision"
  assert_equal "${#d[@]}" 14
  assert_equal "${d[1]} ${d[2]} ${d[7]} ${d[8]}" "slurm-77-r0 none resume $OUT/checkpoint-2"
  # A run id that is shell code is only ever a value.
  d[9]='$(touch pwned)`touch pwned2`'
  d[6]=1
  printf '%s\0' "${d[@]}" >"$JOBDIR/decision"
  SLURM_JOB_ID=77 run -0 --separate-stderr "$TR" -o "$OUT" -- printenv WANDB_RUN_ID
  assert_output "${d[9]}"
  assert_stderr --partial '🤝 using the decision of job slurm-77-r0'
  # Not of its form (a mode we never write, a relative path, a field missing): decided anew.
  d[7]=maybe
  printf '%s\0' "${d[@]}" >"$JOBDIR/decision"
  SLURM_JOB_ID=77 run -0 --separate-stderr "$TR" -o "$OUT" -- true
  refute_stderr --partial '🤝'
  assert_stderr --partial "🔄 resuming from checkpoint: $OUT/checkpoint-2 (the newest complete checkpoint"
  printf '%s\0' train-resume-decision-1 slurm-77-r0 none >"$JOBDIR/decision"
  SLURM_JOB_ID=77 run -0 --separate-stderr "$TR" -o "$OUT" -- true
  refute_stderr --partial '🤝'
  run find "$WORK" "$HOME" -name 'pwned*'
  assert_output ''
}

@test "under one SLURM step, a task that sees other checkpoints than the one that decided is an error" {
  SLURM_JOB_ID=77 SLURM_STEP_ID=0 run -0 "$TR" -o "$OUT" -q -- true
  make_state "$OUT/checkpoint-4" 4
  run -1 --separate-stderr env SLURM_JOB_ID=77 SLURM_STEP_ID=0 "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial "task of job slurm-77-r0 step 0 on $(uname -n): the job's decision, made by pid"
  assert_stderr --partial "saw other checkpoints in $OUT than this task sees"
  assert [ ! -e "$WORK/ran" ]
  # Another step of the job decides anew; so does a start outside any step.
  run -0 --separate-stderr env SLURM_JOB_ID=77 SLURM_STEP_ID=1 "$TR" -o "$OUT" -- printenv TRAIN_RESUME_CHECKPOINT
  assert_output "$OUT/checkpoint-4"
  make_state "$OUT/checkpoint-6" 6
  run -0 --separate-stderr env SLURM_JOB_ID=77 "$TR" -o "$OUT" -- printenv TRAIN_RESUME_CHECKPOINT
  assert_output "$OUT/checkpoint-6"
}

@test "under one SLURM step, a task run with other options than the one that decided is an error" {
  SLURM_JOB_ID=77 SLURM_STEP_ID=0 run -0 "$TR" -o "$OUT" -q --checkpoint none -- true
  run -1 --separate-stderr env SLURM_JOB_ID=77 SLURM_STEP_ID=0 "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial "was made with other options or variables (--checkpoint, --config,"
  assert_stderr --partial "than this task's: the tasks of one step must run the same command. Nothing run"
  assert [ ! -e "$WORK/ran" ]
}

@test "a task that cannot see the chosen checkpoint: a clear error, nothing run" {
  SLURM_JOB_ID=77 SLURM_STEP_ID=0 run -0 "$TR" -o "$OUT" -q -- true
  # The same names in the output dir, but checkpoint-2 is no folder for this task.
  rm -r "$OUT/checkpoint-2"
  : >"$OUT/checkpoint-2"
  run -1 --separate-stderr env SLURM_JOB_ID=77 SLURM_STEP_ID=0 "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial "the job's decision (made by pid"
  assert_stderr --partial "resumes from $OUT/checkpoint-2, but this task on $(uname -n) cannot see it (not a folder): the output dir must be on a file system every node of the job shares. Nothing run"
  assert [ ! -e "$WORK/ran" ]
}

@test "a task waits, logged, while another decides; at most _WANDB_RESUME_MUTEX_WAIT s" {
  mkdir -p "$JOBDIR/procs"
  flock "$JOBDIR/lock" sleep 2 &
  STRAY=$!
  sleep 0.3
  run -0 --separate-stderr "$TR" -o "$OUT" -- true
  assert_stderr --partial "⏳ another train-resume is deciding for $OUT ($JOBDIR/lock): waiting for it (at most 300 s)"
  assert_stderr --partial "🔄 resuming from checkpoint: $OUT/checkpoint-2"
  wait "$STRAY"
  flock "$JOBDIR/lock" sleep 30 &
  STRAY=$!
  sleep 0.3
  run -1 --separate-stderr bash -c 'source "$1"; _WANDB_RESUME_MUTEX_WAIT=1; wandb_resume::configure -o "$2"' _ "$LIB" "$OUT"
  assert_stderr --partial "the lock $JOBDIR/lock was held for more than 1 s by another train-resume deciding for $OUT"
}

@test "TRAIN_RESUME_LOCK_WAIT: wait for another job to end (logged), then go on; or give up" {
  env SLURM_JOB_ID=4242 "$TR" -o "$OUT" -q -- sleep 3 &
  BG=$!
  sleep 1
  run -0 --separate-stderr env TRAIN_RESUME_LOCK_WAIT=30 "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial "⏳ output dir $OUT is in use by job slurm-4242-r0 (host $(uname -n), pid $BG alive): waiting for it to end (at most 30 s, TRAIN_RESUME_LOCK_WAIT)"
  assert [ -e "$WORK/ran" ]
  start_holder 4242
  run -1 --separate-stderr env TRAIN_RESUME_LOCK_WAIT=1 "$TR" -o "$OUT" -- true
  assert_stderr --partial "is in use by job slurm-4242-r0"
  assert_stderr --partial '(waited 1 s)'
  run -1 --separate-stderr env TRAIN_RESUME_LOCK_WAIT=x "$TR" -o "$OUT" -- true
  assert_stderr --partial "TRAIN_RESUME_LOCK_WAIT='x': not a number"
}

@test "a process on another host counts while its registration is flock-ed; unlocked, it is gone" {
  [[ $EUID == 0 ]] && command -v unshare >/dev/null || skip 'needs root and unshare (a UTS namespace: another host name)'
  # The holder runs as if on host "other-host" (its own UTS namespace).
  unshare -u bash -c 'hostname other-host && exec env SLURM_JOB_ID=4242 "$1" -o "$2" -q -- sleep 30' _ "$TR" "$OUT" &
  BG=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(registrations) == *@other-host && $(ps -o comm= -p "$BG") == sleep ]] && break
    sleep 0.1
  done
  local name
  name=$(registration_of "$BG")
  name=${name%@*}@other-host
  assert_equal "$(registrations)" "$name"
  run -1 --separate-stderr "$TR" -o "$OUT" -- true
  assert_stderr --partial "in use by job slurm-4242-r0 (host other-host, pid $BG alive;"
  kill "$BG"
  wait "$BG" || true
  BG=''
  # Its file is still there, but nobody holds its flock any more: gone.
  assert_equal "$(registrations)" "$name"
  run -0 --separate-stderr "$TR" -o "$OUT" -- true
  run registrations
  refute_output --partial other-host
}

@test "the job state dir falls back to OUT/.train-resume when the parent is not writable" {
  open_workdir
  mkdir -p "$OUT"
  chmod 777 "$OUT"
  chmod 555 "$WORK"
  run --separate-stderr as_nobody "$TR" -o "$OUT" -- printenv TRAIN_RESUME_JOB_DIR
  chmod 755 "$WORK"
  assert_success
  assert_output "$OUT/.train-resume"
  assert [ -d "$OUT/.train-resume/procs" ]
}

@test "a file system without flock (Lustre without -o flock) is an error naming --no-lock" {
  mkdir -p "$WORK/fakebin"
  printf '#!/bin/bash\necho "flock: 10: Function not implemented" >&2\nexit 1\n' >"$WORK/fakebin/flock"
  chmod +x "$WORK/fakebin/flock"
  run -1 --separate-stderr env PATH="$WORK/fakebin:$PATH" "$TR" -o "$OUT" -- touch "$WORK/ran"
  assert_stderr --partial 'cannot lock'
  assert_stderr --partial 'Function not implemented'
  assert_stderr --partial '--no-lock'
  assert [ ! -e "$WORK/ran" ]
}
