# shellcheck shell=bash
#
# tools.bash: running our own tools (jq, grep) bounded in memory, and telling their
# failures apart: a jq or grep that is missing, crashes, is killed or runs out of
# memory is an error of ours (exit 1 of the decision), never a damaged checkpoint.
# Part of lib/wandb_resume.sh.

# The address space every jq and grep of ours gets (`ulimit -v`, KiB): a decision
# stays in tens of MB whatever the file.
_WANDB_RESUME_MEM_KB=65536

# Up to this size, the NUL grep is grep -P (_grep_nul).
_WANDB_RESUME_PCRE_MAX=8388608

# How to get jq, for every message that finds it missing: the command, from the
# system's packages (pip's `jq` is a Python binding, without the command).
_WANDB_RESUME_JQ_INSTALL='install the jq command (apt-get install jq, dnf install jq, brew install jq; without root: conda install -c conda-forge jq; the pip package jq has no command)'

# Run jq (bounded in memory) and keep its output. Arguments: JQ ARGS...
# Sets: out (stdout and stderr); error (on a failure of jq). Returns 0 or 1.
wandb_resume::_jq_bounded() {
  local rc=0
  out=$(
    ulimit -v "$_WANDB_RESUME_MEM_KB" 2>/dev/null
    exec jq "$@" 2>&1
  ) || rc=$?
  if ((rc == 0)) && [[ $out == *$'end\1' ]]; then
    return 0
  fi
  wandb_resume::_tool_failure jq "$rc" "$out"
  return 1
}

# Run grep (bounded in memory). Arguments: GREP ARGS...
# Sets: grep_out (its stdout), error (when it failed, but not for lack of memory).
# Returns: 0 found, 1 not found, 2 out of memory (a line too long to hold), 3 failed.
wandb_resume::_grep_bounded() {
  local rc=0
  grep_out=$(
    ulimit -v "$_WANDB_RESUME_MEM_KB" 2>/dev/null
    exec grep "$@" 2>&1
  ) || rc=$?
  ((rc <= 1)) && return "$rc"
  [[ $grep_out == *'memory exhausted'* ]] && return 2
  wandb_resume::_tool_failure grep "$rc" "$grep_out"
  return 3
}

# Does FILE hold a NUL byte (what a crash leaves in blocks never written)? The one
# NUL grep, for the state's reader and the save record's check: with -F and a NUL
# from a pipe (memchr speed, bounded in memory: ~20 ms for 173 MB); for a file of
# SIZE bytes up to _WANDB_RESUME_PCRE_MAX, -P '\x00' first (no pipe to fill: a
# process less; PCRE would take ~10 times as long on 173 MB), and -F where grep has
# no -P. Arguments: FILE [SIZE]. Sets: grep_out, error (as _grep_bounded).
# Returns: as _grep_bounded: 0 found, 1 not found, 2 out of memory, 3 failed.
wandb_resume::_grep_nul() {
  local rc=3
  if [[ -n ${2:-} ]] && (($2 <= _WANDB_RESUME_PCRE_MAX)); then
    wandb_resume::_grep_bounded -q -a -P '\x00' -- "$1"
    rc=$?
  fi
  ((rc == 3)) || return "$rc"
  wandb_resume::_grep_bounded -q -a -F -f <(printf '\0') -- "$1"
}

# Set `error` (the caller's local) to what went wrong with one of our tools.
# Arguments: TOOL EXIT_STATUS OUTPUT
wandb_resume::_tool_failure() {
  local tool=$1 rc=$2 text=${3//$'\n'/ }
  text=${text//[[:cntrl:]]/?}
  if [[ $text == *[Cc]'annot allocate'* || $text == *'out of memory'* ||
    $text == *'memory exhausted'* || $text == *'failed to map segment'* ]]; then
    error="$tool ran out of memory (limit $((_WANDB_RESUME_MEM_KB / 1024)) MiB of address space)"
  elif ((rc == 127 || rc == 126)); then
    error="$tool could not be run (exit $rc)"
  elif ((rc > 128)); then
    error="$tool was killed by signal $((rc - 128))"
  elif ((rc == 0)); then
    error="$tool ended without an answer"
  else
    error="$tool failed (exit $rc)"
  fi
  [[ -z $text ]] || error+=": ${text:0:300}"
}
