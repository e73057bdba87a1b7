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
  local en zh
  wandb_resume::_fmt_table "$1"
  if [[ -z $fmt ]]; then
    fmt=$en
    [[ $lang == zh ]] && fmt=$zh
  fi
  return 0
}

# The formats of message KEY, English and Chinese side by side (one line a key: none
# can be missing in one language). Sets: fmt (the same in both), or en and zh.
wandb_resume::_fmt_table() {
  fmt='' en='' zh=''
  case $1 in
    output_dir) en='📂 output dir: %s' zh='📂 输出目录: %s' ;;
    resume) en='🔄 resuming from checkpoint: %s (%s)' zh='🔄 检测到checkpoint恢复: %s (%s)' ;;
    looking) en='🔍 looking for the W&B run id in %s' zh='🔍 尝试从%s提取WandB run ID' ;;
    found) en='✅ found W&B run id: %s (source %s: %s)' zh='✅ 找到WandB run ID: %s (来源: %s, %s)' ;;
    agrees) en='✅ %s agrees: %s' zh='✅ %s 中的run ID一致: %s' ;;
    disagree) en='⚠️ run ids disagree: %s (%s: %s) and %s (%s: %s); following the order: %s' zh='⚠️ run ID不一致: %s (%s: %s) 与 %s (%s: %s); 按顺序使用 %s' ;;
    export) en='🔧 export %s=%s' zh='🔧 设置环境变量: %s=%s' ;;
    would_export) en='🔧 would export %s=%s (--explain: nothing exported)' zh='🔧 (--explain) 将设置环境变量: %s=%s' ;;
    unset) en='🔧 unset %s (%s)' zh='🔧 取消环境变量: %s (%s)' ;;
    would_unset) en='🔧 would unset %s (%s; --explain: nothing changed)' zh='🔧 (--explain) 将取消环境变量: %s (%s)' ;;
    configured) en='✅ W&B resume configured' zh='✅ WandB恢复配置完成!' ;;
    explained) en='✅ W&B resume decided (--explain: nothing exported, nothing run)' zh='✅ WandB恢复配置已确定 (--explain: 未导出, 未运行)' ;;
    new) en='🆕 new training run (%s)' zh='🆕 开始新的训练会话 (%s)' ;;
    notfound) en='⚠️ no W&B run id found (searched: %s); continuing with WANDB_RESUME=allow' zh='⚠️ 未能找到WandB run ID (已查找: %s); 将以 allow 模式继续' ;;
    skip) en='⚠️ skipping %s: %s' zh='⚠️ 跳过 %s: %s' ;;
    d_newest) en='the newest complete checkpoint in %s' zh='%s 中最新的完整checkpoint' ;;
    d_chosen) en='chosen by %s' zh='由 %s 指定' ;;
    d_ignored) en='%s none: checkpoints are ignored' zh='%s none: 忽略已有的checkpoint' ;;
    d_no_complete) en='no complete checkpoint in %s' zh='%s 中没有完整的checkpoint' ;;
    d_none_in) en='no checkpoint in %s' zh='%s 中没有checkpoint' ;;
    d_not_yet) en='%s does not exist yet' zh='%s 尚不存在' ;;
    warn) fmt='⚠️ %s' ;;
    error) en='❌ error: %s' zh='❌ 错误: %s' ;;
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
