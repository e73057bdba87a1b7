# shellcheck shell=bash
#
# messages.bash: log lines (English and the seed's Chinese wording), warnings,
# skips, and the reason a path cannot be read. ❌ marks an error (nothing is run);
# ⚠️ a finding the job goes on with.
# Part of lib/wandb_resume.sh.

# Print a log line on stderr in the caller's language, unless quiet.
# Arguments: LEVEL (info|warn|error) KEY [ARGS...]
wandb_resume::_log() {
  [[ $1 != error && ${quiet:-0} == 1 ]] && return 0
  local key=$2 fmt
  shift 2
  wandb_resume::_fmt "$key"
  # shellcheck disable=SC2059 # the format is one of ours, from _fmt; data are arguments
  printf "%s: ${fmt}\n" "${_WANDB_RESUME_PROG:-train-resume}" "$@" >&2
}

# Set `fmt` (the caller's local) to the printf format of a message KEY.
# shellcheck disable=SC2154 # shared through dynamic scope, which shellcheck does not follow; read here, a caller's: _wr_lang_env
wandb_resume::_fmt() {
  local lang=en
  case ${WANDB_RESUME_LANG:-} in
    zh*) lang=zh ;;
    '')
      local l=${_wr_lang_env#*|}
      [[ ${l%%|*} == zh* || (-z ${l%%|*} && ${l#*|} == zh*) ]] && lang=zh
      ;;
  esac
  if [[ $lang == zh ]]; then
    wandb_resume::_fmt_zh "$1"
  else
    wandb_resume::_fmt_en "$1"
  fi
}

# The English format of message KEY. Sets: fmt.
wandb_resume::_fmt_en() {
  case $1 in
    output_dir) fmt='📂 output dir: %s' ;;
    resume) fmt='🔄 resuming from checkpoint: %s (%s)' ;;
    looking) fmt='🔍 looking for the W&B run id in %s' ;;
    found) fmt='✅ found W&B run id: %s (source %s: %s)' ;;
    agrees) fmt='✅ %s agrees: %s' ;;
    disagree) fmt='⚠️ run ids disagree: %s (%s: %s) and %s (%s: %s); following the order: %s' ;;
    export) fmt='🔧 export %s=%s' ;;
    would_export) fmt='🔧 would export %s=%s (--explain: nothing exported)' ;;
    unset) fmt='🔧 unset %s (%s)' ;;
    would_unset) fmt='🔧 would unset %s (%s; --explain: nothing changed)' ;;
    configured) fmt='✅ W&B resume configured' ;;
    explained) fmt='✅ W&B resume decided (--explain: nothing exported, nothing run)' ;;
    new) fmt='🆕 new training run (%s)' ;;
    notfound) fmt='⚠️ no W&B run id found (searched: %s); continuing with WANDB_RESUME=allow' ;;
    skip) fmt='⚠️ skipping %s: %s' ;;
    d_newest) fmt='the newest complete checkpoint in %s' ;;
    d_chosen) fmt='chosen by %s' ;;
    d_ignored) fmt='%s none: checkpoints are ignored' ;;
    d_no_complete) fmt='no complete checkpoint in %s' ;;
    d_none_in) fmt='no checkpoint in %s' ;;
    d_not_yet) fmt='%s does not exist yet' ;;
    warn) fmt='⚠️ %s' ;;
    error) fmt='❌ error: %s' ;;
    *) fmt='%s' ;;
  esac
}

# The Chinese format of message KEY (WANDB_RESUME_LANG=zh, or a zh locale). Sets: fmt.
wandb_resume::_fmt_zh() {
  case $1 in
    output_dir) fmt='📂 输出目录: %s' ;;
    resume) fmt='🔄 检测到checkpoint恢复: %s (%s)' ;;
    looking) fmt='🔍 尝试从%s提取WandB run ID' ;;
    found) fmt='✅ 找到WandB run ID: %s (来源: %s, %s)' ;;
    agrees) fmt='✅ %s 中的run ID一致: %s' ;;
    disagree) fmt='⚠️ run ID不一致: %s (%s: %s) 与 %s (%s: %s); 按顺序使用 %s' ;;
    export) fmt='🔧 设置环境变量: %s=%s' ;;
    would_export) fmt='🔧 (--explain) 将设置环境变量: %s=%s' ;;
    unset) fmt='🔧 取消环境变量: %s (%s)' ;;
    would_unset) fmt='🔧 (--explain) 将取消环境变量: %s (%s)' ;;
    configured) fmt='✅ WandB恢复配置完成!' ;;
    explained) fmt='✅ WandB恢复配置已确定 (--explain: 未导出, 未运行)' ;;
    new) fmt='🆕 开始新的训练会话 (%s)' ;;
    notfound) fmt='⚠️ 未能找到WandB run ID (已查找: %s); 将以 allow 模式继续' ;;
    skip) fmt='⚠️ 跳过 %s: %s' ;;
    d_newest) fmt='%s 中最新的完整checkpoint' ;;
    d_chosen) fmt='由 %s 指定' ;;
    d_ignored) fmt='%s none: 忽略已有的checkpoint' ;;
    d_no_complete) fmt='%s 中没有完整的checkpoint' ;;
    d_none_in) fmt='%s 中没有checkpoint' ;;
    d_not_yet) fmt='%s 尚不存在' ;;
    warn) fmt='⚠️ %s' ;;
    error) fmt='❌ 错误: %s' ;;
    *) fmt='%s' ;;
  esac
}

# Set `detail` (the caller's local) to message KEY with ARGS, in the log's language.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: detail
wandb_resume::_detail() {
  local fmt
  wandb_resume::_fmt "$1"
  shift
  # shellcheck disable=SC2059 # the format is one of ours, from _fmt
  printf -v detail "$fmt" "$@"
}

# Record a warning (for --json) and log it. Arguments: TEXT
wandb_resume::_warn() {
  warnings+=("$1")
  wandb_resume::_log warn warn "$1"
}

# Record a skipped path with its reason (for --json) and log it. Arguments: PATH REASON
wandb_resume::_skip() {
  skipped+=("$1" "$2")
  wandb_resume::_log warn skip "$1" "$2"
}

# Describe why PATH cannot be read, with the owner and mode to check.
# Arguments: PATH. Outputs: the reason on stdout.
wandb_resume::_permission_reason() {
  local owner_mode
  owner_mode=$(exec stat -c '%U:%G %A' -- "$1" 2>/dev/null) || owner_mode='unknown owner and mode'
  printf 'permission denied (owner %s; running as %s): check with ls -la, then chmod or run as the owner' \
    "$owner_mode" "$(id -un 2>/dev/null || printf 'uid %s' "$EUID")"
}
