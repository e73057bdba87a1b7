# shellcheck shell=bash
#
# weights.bash: is what the trainer loads on a resume there and whole? Model weights
# (single safetensors: the header's data offsets fit the file; a sharded index:
# every shard it names present and whole; torch .bin files), optimizer, scheduler
# and RNG state (torch's zip format ends with an end-of-central-directory record:
# a cheap check for truncation). Reads a few bytes of each file, never the data.
# Part of lib/wandb_resume.sh.

# The largest safetensors header we read (safetensors itself refuses over 100 MB).
# (a default: this part is sourced when first used, and a caller may have set it before)
: "${_WANDB_RESUME_ST_HEADER_MAX:=104857600}"
# One tensor's place in a safetensors header (ERE).
_WANDB_RESUME_ST_OFFSETS='"data_offsets":[[:space:]]*\[[[:space:]]*[0-9]+[[:space:]]*,[[:space:]]*[0-9]+[[:space:]]*\]'

# Check the files a resume loads from DIR (its trainer_state.json is already known
# good). A folder without model weights (only trainer_state.json, say) is not
# complete: the trainer cannot resume from it ("Can't find a valid checkpoint").
# Arguments: DIR. Reads: allow_weights_only. Sets: c_reason ("" when fine),
# error (a tool of ours failed), w_only=1 when it is weights-only and allowed. Returns: 0 fine, 1 not (c_reason), 2 tool failure,
# 3 we may not read a file (c_reason), 4 a file vanished while it was checked
# (c_reason: deleted meanwhile, so whatever the check said is not to be trusted).
wandb_resume::_check_weights() {
  local rc=0 i files_seen=0
  local -a models=() files=() labels=()
  wandb_resume::_check_weights_in "$1" || rc=$?
  ((rc)) || return 0
  # What was there when first looked at: the model files, and the files to check
  # that _check_weight_files found present.
  files=("${files[@]:0:files_seen}") labels=("${labels[@]:0:files_seen}")
  for i in "${models[@]}"; do
    files+=("${1%/}/$i") labels+=("$i")
  done
  for i in "${!files[@]}"; do
    if wandb_resume::_vanished "${files[i]}"; then
      c_reason="${labels[i]} vanished while it was checked (deleted meanwhile: rotated away by save_total_limit?)"
      return 4
    fi
  done
  return "$rc"
}

# The body of _check_weights. Arguments: DIR. Sets (_check_weights' locals):
# models, files, labels, files_seen (what it checked), c_reason, error.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: w_only
wandb_resume::_check_weights_in() {
  local dir=${1%/} f name shard
  local -a shards=() fsdp=() ds_dirs=() rng=()
  c_reason=''
  for name in model.safetensors adapter_model.safetensors model.safetensors.index.json \
    pytorch_model.bin adapter_model.bin pytorch_model.bin.index.json; do
    [[ -e $dir/$name || -L $dir/$name ]] && models+=("$name")
  done
  # Globs on the quoted dir (nullglob is on: guest.bash): compgen -G would read a
  # backslash, '*' or '[' in the path as pattern characters.
  fsdp=("$dir"/pytorch_model_fsdp*) ds_dirs=("$dir"/global_step*) rng=("$dir"/rng_state*.pth)
  if ((${#models[@]} + ${#fsdp[@]} + ${#ds_dirs[@]} == 0)); then
    c_reason='no model weights (model.safetensors, adapter_model.safetensors, a sharded index, pytorch_model.bin, FSDP or DeepSpeed folders)'
    return 1
  fi
  for name in "${models[@]}"; do
    case $name in
      *.index.json)
        wandb_resume::_index_shards "$dir/$name" || return
        for shard in "${shards[@]}"; do
          files+=("$dir/$shard") labels+=("$shard (named by $name)")
        done
        ;;
      *) files+=("$dir/$name") labels+=("$name") ;;
    esac
  done
  # Optimizer, scheduler, RNG: what a full resume needs (DeepSpeed keeps the
  # optimizer and scheduler in its global_step* folder, FSDP the optimizer in
  # optimizer_0 or optimizer.bin). None of them: a save_only_model checkpoint.
  local ds=0 has_opt=0 has_sched=0 has_rng=0
  ((${#ds_dirs[@]})) && ds=1
  [[ $ds == 1 || -e $dir/optimizer.pt || -e $dir/optimizer.bin || -e $dir/optimizer_0 ]] && has_opt=1
  [[ $ds == 1 || -e $dir/scheduler.pt ]] && has_sched=1
  ((${#rng[@]})) && has_rng=1
  if ((! has_opt && ! has_sched && ! has_rng)); then
    if ((${allow_weights_only:-0})); then
      w_only=1
      wandb_resume::_check_weight_files
      return
    fi
    c_reason=$_WANDB_RESUME_WEIGHTS_ONLY
    return 1
  elif ((! has_opt)); then
    c_reason='optimizer.pt missing (the trainer would go on with a fresh optimizer, a different run)'
    return 1
  elif ((! has_sched)); then
    c_reason='scheduler.pt missing (the trainer would restart the learning rate schedule)'
    return 1
  elif ((! has_rng)); then
    c_reason='rng_state.pth missing (the save was cut short before its last files?)'
    return 1
  fi
  for f in "$dir"/optimizer.pt "$dir"/optimizer.bin "$dir"/scheduler.pt "$dir"/scaler.pt "$dir"/rng_state*.pth; do
    [[ -e $f ]] && files+=("$f") labels+=("${f##*/}")
  done
  wandb_resume::_check_weight_files
}

# The shard file names of a sharded index (weight_map values).
# Arguments: INDEX. Sets: shards, c_reason, error. Returns 0, 1 bad index, 2 jq failed.
wandb_resume::_index_shards() {
  local out size rc=0
  shards=()
  size=$(exec stat -L -c %s -- "$1" 2>/dev/null) || size=0
  if ((size > 67108864)); then
    c_reason="${1##*/} is $size bytes (over 64 MiB: not an index HF writes)"
    return 1
  fi
  # shellcheck disable=SC2016 # jq program
  out=$(
    ulimit -v "$_WANDB_RESUME_MEM_KB" 2>/dev/null
    exec jq -j 'if (.weight_map | type) != "object" then "bad\u0001"
      else ([.weight_map[]] | unique | map(select(type == "string")))
        | if any(test("^$|/|^\\.\\.?$|[\u0000-\u001f]")) then "bad\u0001"
          else (.[] | . + "\u0001") end end, "end\u0001"' "$1" 2>&1
  ) || rc=$?
  if ((rc > 0 && rc < 126)) && [[ $out == *'parse error'* || $out == *'Cannot index'* || $out == *'Cannot iterate'* ]]; then
    c_reason="${1##*/} is not valid JSON (truncated?)"
    return 1
  elif ((rc)); then
    wandb_resume::_tool_failure jq "$rc" "$out"
    return 2
  fi
  mapfile -t -d $'\1' shards <<<"$out"
  unset 'shards[-1]'
  [[ ${shards[-1]:-} == end ]] && unset 'shards[-1]'
  if [[ ${shards[0]:-} == bad || ${#shards[@]} -eq 0 ]]; then
    c_reason="${1##*/} names no usable shards (weight_map)"
    shards=()
    return 1
  fi
}

# Check the weights and state files in `files` (with `labels`), a few processes for
# all of them, step by step: present and readable, sizes (not empty), torch's zip
# ends, safetensors header lengths, safetensors data ends. Sets: c_reason, error,
# files_seen (how many of files, from the first, were found there: one gone later
# vanished meanwhile).
# Returns 0 fine, 1 not (c_reason), 2 a tool failed (error), 3 we may not read one.
wandb_resume::_check_weight_files() {
  local -a sizes=() st=() st_i=() zip=() zip_i=() lens=()
  wandb_resume::_weights_present || return
  ((${#files[@]})) || return 0
  wandb_resume::_weights_sizes || return
  wandb_resume::_zip_ends || return
  ((${#st[@]})) || return 0
  wandb_resume::_safetensors_lengths || return
  wandb_resume::_safetensors_ends
}

# Each of `files` is there, a regular file, readable. Sets: c_reason, files_seen.
# Returns: as _check_weight_files.
wandb_resume::_weights_present() {
  local i f
  for i in "${!files[@]}"; do
    f=${files[i]}
    if [[ ! -e $f ]]; then
      c_reason="${labels[i]} missing"
      return 1
    fi
    files_seen=$((i + 1))
    # (Not a file or not readable may also mean gone since -e: _check_weights
    # looks.)
    if [[ ! -f $f ]]; then
      c_reason="${labels[i]} is not a regular file"
      return 1
    elif [[ ! -r $f ]]; then
      c_reason="${labels[i]}: $(wandb_resume::_permission_reason "$f")"
      return 3
    fi
  done
}

# The sizes of `files` (one stat): none empty; which are safetensors (st, st_i: long
# enough for a header) and which torch's zip format (zip, zip_i: PK\3\4 at the
# start, long enough for the end record). Sets: sizes, st, st_i, zip, zip_i;
# c_reason, error. Returns: as _check_weight_files.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: error
wandb_resume::_weights_sizes() {
  local i f magic
  # (A file deleted meanwhile shortens these lists: a check fails, and
  # _check_weights finds the file gone.)
  mapfile -t sizes < <(stat -L -c %s -- "${files[@]}" 2>/dev/null)
  for i in "${!files[@]}"; do
    f=${files[i]}
    if [[ ! ${sizes[i]:-} =~ ^[0-9]+$ ]]; then
      error="stat failed on $f"
      return 2
    elif ((sizes[i] == 0)); then
      c_reason="${labels[i]} is empty (a save cut short?)"
      return 1
    elif [[ $f == *.safetensors ]]; then
      if ((sizes[i] < 8)); then
        c_reason="${labels[i]} is ${sizes[i]} bytes: too short for a safetensors header (truncated?)"
        return 1
      fi
      st+=("$f") st_i+=("$i")
    else
      magic=''
      IFS= read -r -N 4 magic 2>/dev/null <"$f"
      if [[ $magic == $'PK\x03\x04' ]]; then
        if ((sizes[i] < 22)); then
          c_reason="${labels[i]}: the zip file torch wrote has no end record (truncated?)"
          return 1
        fi
        zip+=("$f") zip_i+=("$i")
      fi
    fi
  done
}

# Each of torch's zip files (zip) ends with the end-of-central-directory record
# (PK\5\6 and 18 bytes; torch writes no comment). Sets: c_reason. Returns: 0, 1 not.
wandb_resume::_zip_ends() {
  local i
  local -a zends=()
  ((${#zip[@]})) || return 0
  mapfile -t zends < <(tail -q -c 22 -- "${zip[@]}" 2>/dev/null | od -An -v -t x1 -w22)
  for i in "${!zip[@]}"; do
    if [[ ${zends[i]:-} != ' 50 4b 05 06'* ]]; then
      c_reason="${labels[zip_i[i]]}: the zip file torch wrote has no end record (truncated?)"
      return 1
    fi
  done
}

# The header length of each safetensors file (st): 8 bytes, little-endian, that fit
# the file. Sets: lens; c_reason. Returns: 0, 1 one does not fit.
wandb_resume::_safetensors_lengths() {
  local i n size
  mapfile -t lens < <(head -q -c 8 -- "${st[@]}" 2>/dev/null | od -An -v -t u8 -w8)
  for i in "${!st[@]}"; do
    n=${lens[i]-} size=${sizes[st_i[i]]}
    n=${n//[[:space:]]/}
    if [[ ! $n =~ ^[0-9]{1,18}$ ]] || ((n < 2 || n > _WANDB_RESUME_ST_HEADER_MAX || n + 8 > size)); then
      c_reason="${labels[st_i[i]]}: safetensors header length ${n:-unreadable} does not fit the file ($size bytes; truncated?)"
      return 1
    fi
    lens[i]=$n
  done
}

# The data end of each safetensors header (st, lens) is the file's end: the largest
# END of its `"data_offsets":[BEGIN,END]` pairs (a quote inside a tensor name or a
# metadata value is escaped, so only the keys match), found by one grep over all the
# headers, one line each (JSON white space may hold newlines: made spaces), after a
# mark of ours: a number of this call and the index. Sets: c_reason, error.
# Returns: as _check_weight_files.
# shellcheck disable=SC2034 # shared through dynamic scope, which shellcheck does not follow; assigned here, read by a caller or callee: c_reason
wandb_resume::_safetensors_ends() {
  local i line idx=-1 pair mark=$RANDOM$RANDOM: out rc=0 size end
  local -a ends=()
  out=$(
    ulimit -v "$_WANDB_RESUME_MEM_KB" 2>/dev/null
    set -o pipefail # a tr or grep that fails is ours (a dd that cannot read: no tensor found)
    for i in "${!st[@]}"; do
      printf '\1%s%s ' "$mark" "$i"
      dd if="${st[i]}" iflag=skip_bytes,count_bytes skip=8 count="${lens[i]}" status=none 2>/dev/null || :
    done | tr '\n\1' ' \n' | LC_ALL=C grep -a -o -E "^${mark}[0-9]+ |$_WANDB_RESUME_ST_OFFSETS" 2>&1
  ) || rc=$?
  if ((rc > 1)); then
    wandb_resume::_tool_failure grep "$rc" "$out"
    return 2
  fi
  while IFS= read -r line; do
    if [[ $line == "$mark"+([0-9])' ' ]]; then
      idx=${line#"$mark"} idx=${idx% }
    elif ((idx >= 0)) && [[ $line =~ ,[[:space:]]*([0-9]{1,18})[[:space:]]*\]$ ]]; then
      pair=${BASH_REMATCH[1]}
      ((${ends[idx]:-0} >= 10#$pair)) || ends[idx]=$((10#$pair))
    fi
  done <<<"$out"
  for i in "${!st[@]}"; do
    size=${sizes[st_i[i]]}
    if [[ -z ${ends[i]:-} ]]; then
      c_reason="${labels[st_i[i]]}: the safetensors header names no tensor's data_offsets (truncated or damaged)"
      return 1
    fi
    end=$((8 + lens[i] + ends[i]))
    if ((end != size)); then
      c_reason="${labels[st_i[i]]}: its header says the data ends at byte $end, the file has $size (truncated?)"
      return 1
    fi
  done
  return 0
}
