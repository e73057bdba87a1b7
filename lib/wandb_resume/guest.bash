# shellcheck shell=bash
#
# guest.bash: guest manners. Every public function runs its body through
# wandb_resume::_guest, which gives it our shell options and puts the caller's back.
# Part of lib/wandb_resume.sh.

# Run a function with our own shell options, then put the caller's back.
# Ours include nounset (set -u): reading a name that was never set (a misspelled
# local of the decision's state) stops the shell loudly instead of reading as empty
# (bash exits a non-interactive shell on it: a bug of ours, never a silent choice);
# what may legitimately be unset is read as ${NAME-} or ${NAME:-default}.
# `local -` restores the `set` options; shopt options are saved and restored here,
# and so is the caller's BASH_REMATCH (our `=~` tests overwrite it; bash < 5.1
# keeps it read-only, so there it is not put back).
wandb_resume::_guest() {
  local -
  set +e -u +f +o pipefail
  local _wr_rematch_set=${BASH_REMATCH[0]+1}
  local -a _wr_rematch=("${BASH_REMATCH[@]}")
  local _wr_opt _wr_rc=0
  local -a _wr_on=() _wr_off=()
  for _wr_opt in nullglob failglob dotglob nocaseglob nocasematch extglob globstar expand_aliases; do
    if shopt -q "$_wr_opt"; then _wr_on+=("$_wr_opt"); else _wr_off+=("$_wr_opt"); fi
  done
  shopt -s nullglob extglob
  # expand_aliases off: bash reads the text of a $(...) again when it runs it, so a
  # caller's alias (jq, printf) would reach into our command substitutions.
  shopt -u failglob dotglob nocaseglob nocasematch globstar expand_aliases
  local IFS=$' \t\n'
  # Byte order, byte lengths and plain-ASCII character classes everywhere; the
  # caller's locale is read first (_lang) for the language of the log.
  local _wr_lang_env="${WANDB_RESUME_LANG:-}|${LC_ALL:-}|${LANG:-}"
  local _wr_lc_all=${LC_ALL-} _wr_lc_all_set=${LC_ALL+1}
  local LC_ALL=C
  "$@" || _wr_rc=$?
  shopt -u "${_wr_off[@]}"
  ((${#_wr_on[@]} == 0)) || shopt -s "${_wr_on[@]}"
  if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501)); then
    if [[ -n $_wr_rematch_set ]]; then BASH_REMATCH=("${_wr_rematch[@]}"); else unset BASH_REMATCH; fi
  fi
  return "$_wr_rc"
}
