#!/usr/bin/env bats
# Installing: `pip install .` and `pip install -e .` into a fresh venv, `make install
# PREFIX=`, pipx and `uv tool install` (when they can be installed here), one version
# everywhere, `train-resume --lib` for each, and a `make help` that lists every target.
# Everything is written under $BATS_TEST_TMPDIR (pip builds from a copy of the tree, not
# in the repo).
# shellcheck disable=SC2016 # single-quoted scripts are expanded by the inner shell
bats_require_minimum_version 1.5.0

setup() {
  load test_helper/common
  common_setup
}

# Copy what a pip build reads into DIR (a clean source tree, as git clone gives).
copy_source() {
  mkdir -p "$1"
  cp -r "$ROOT/bin" "$ROOT/lib" "$ROOT/train_resume" "$ROOT/pyproject.toml" \
    "$ROOT/setup.py" "$ROOT/README.md" "$1/"
  find "$1" -name __pycache__ -prune -exec rm -rf {} +
}

# A fresh venv at VENV_DIR with train-resume pip-installed from a copy of the tree
# (PIP_FLAGS: e.g. -e for an editable install). Arguments: VENV_DIR
pip_install() {
  copy_source "$BATS_TEST_TMPDIR/src"
  python3 -m venv "$1"
  # shellcheck disable=SC2086 # PIP_FLAGS holds words
  "$1/bin/pip" install -q --disable-pip-version-check ${PIP_FLAGS:-} "$BATS_TEST_TMPDIR/src"
}

# `source "$(TRAIN_RESUME --lib)"` in a job script decides, from another cwd, with
# TRAIN_RESUME run by its full path and PATH holding only the system.
# Arguments: TRAIN_RESUME EXPECTED_LIB
assert_lib_sources() {
  make_state "$OUT/checkpoint-2" 2
  run -0 --separate-stderr env PATH=/usr/bin:/bin "$1" --lib
  assert_output "$2"
  run -0 --separate-stderr env PATH=/usr/bin:/bin bash -c 'cd / && source "$("$1" --lib)" &&
    wandb_resume::configure -o "$2" -q && printf "%s\n" "$TRAIN_RESUME_CHECKPOINT"' _ "$1" "$OUT"
  assert_output "$OUT/checkpoint-2"
}

@test "pip install . puts train-resume on the venv's PATH, with its library and the Python package" {
  local venv=$BATS_TEST_TMPDIR/venv
  pip_install "$venv"
  # The command runs from the venv's bin (no repo on PATH or PYTHONPATH) and finds
  # the bash library the wheel put under share/.
  make_state "$OUT/checkpoint-2" 2
  run -0 --separate-stderr env PATH="$venv/bin:/usr/bin:/bin" train-resume -o "$OUT" --explain --json
  assert_equal "$(field .mode)" resume
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  assert [ -f "$venv/share/train-resume/lib/wandb_resume.sh" ]
  # The library, sourced from where pip put it, decides too.
  run -0 --separate-stderr bash -c 'source "$1/share/train-resume/lib/wandb_resume.sh" &&
    wandb_resume::configure -o "$2" -q && printf "%s\n" "$TRAIN_RESUME_CHECKPOINT"' _ "$venv" "$OUT"
  assert_output "$OUT/checkpoint-2"
  # The Python package imports from the venv alone (cwd elsewhere, no PYTHONPATH).
  run -0 --separate-stderr env -u PYTHONPATH "$venv/bin/python" -c \
    'import train_resume.callback, train_resume; print(train_resume.__file__)'
  assert_output --partial "$venv/lib/"
  # Under the command, a Python process of the job runs the bootstrap from share/.
  run -0 --separate-stderr env -u PYTHONPATH PATH="$venv/bin:/usr/bin:/bin" train-resume -q \
    -o "$OUT" -- "$venv/bin/python" -c 'import sys; print(sys.modules["train_resume.hook"].__file__)'
  assert_output "$venv/share/train-resume/train_resume/hook.py"
}

@test "pip install -e . gives a working train-resume, --lib and decision (the clone found through the package)" {
  local venv=$BATS_TEST_TMPDIR/venv
  PIP_FLAGS=-e pip_install "$venv"
  assert [ ! -e "$venv/share/train-resume" ] # an editable install copies no data files
  run -0 --separate-stderr env PATH="$venv/bin:/usr/bin:/bin" train-resume --version
  assert_output "$("$TR" --version)"
  assert_lib_sources "$venv/bin/train-resume" "$BATS_TEST_TMPDIR/src/lib/wandb_resume.sh"
  run -0 --separate-stderr env PATH="$venv/bin:/usr/bin:/bin" train-resume -o "$OUT" --explain --json
  assert_equal "$(field .checkpoint)" "$OUT/checkpoint-2"
  # The hand-off's .pth is in its site-packages too.
  assert [ -f "$(echo "$venv"/lib/python*/site-packages/train-resume.pth)" ]
}

@test "an install whose library is gone is a clear error, not bash's" {
  local venv=$BATS_TEST_TMPDIR/venv
  PIP_FLAGS=-e pip_install "$venv"
  rm -r "$BATS_TEST_TMPDIR/src/lib"
  run -1 --separate-stderr "$venv/bin/train-resume" --version
  assert_stderr --partial "train-resume: error: cannot find the bash library (lib/wandb_resume.sh) beside $venv/bin"
  refute_stderr --partial 'No such file or directory'
}

@test "train-resume --lib from a clone is the clone's library, and sourcing it decides" {
  assert_lib_sources "$TR" "$ROOT/lib/wandb_resume.sh"
  ln -s "$TR" "$WORK/tr-link"
  run -0 "$WORK/tr-link" --lib
  assert_output "$ROOT/lib/wandb_resume.sh"
}

@test "train-resume --lib after pip install . is the library under share/, and sourcing it decides" {
  local venv=$BATS_TEST_TMPDIR/venv
  pip_install "$venv"
  assert_lib_sources "$venv/bin/train-resume" "$venv/share/train-resume/lib/wandb_resume.sh"
}

@test "train-resume --lib after make install is the library under PREFIX/lib/train-resume" {
  run -0 make -C "$ROOT" install PREFIX="$WORK/prefix" DESTDIR=
  assert_lib_sources "$WORK/prefix/bin/train-resume" \
    "$WORK/prefix/lib/train-resume/lib/wandb_resume.sh"
}

# A tool (pipx or uv) installed into a venv of its own, or a skip saying why not.
# Arguments: TOOL. Sets: tool (its path).
tool_venv() {
  local venv=$BATS_TEST_TMPDIR/$1-venv
  if ! python3 -m venv "$venv" ||
    ! "$venv/bin/pip" install -q --disable-pip-version-check "$1" >"$BATS_TEST_TMPDIR/$1.log" 2>&1; then
    skip "$1 cannot be installed here: $(tail -n 1 "$BATS_TEST_TMPDIR/$1.log")"
  fi
  tool=$venv/bin/$1
}

@test "train-resume --lib after pipx install (a symlink into pipx's venv) is that venv's library" {
  local tool
  tool_venv pipx
  copy_source "$BATS_TEST_TMPDIR/src"
  export PIPX_HOME=$BATS_TEST_TMPDIR/pipx PIPX_BIN_DIR=$BATS_TEST_TMPDIR/pipx-bin
  run -0 "$tool" install "$BATS_TEST_TMPDIR/src"
  assert [ -L "$PIPX_BIN_DIR/train-resume" ]
  assert_lib_sources "$PIPX_BIN_DIR/train-resume" \
    "$PIPX_HOME/venvs/train-resume/share/train-resume/lib/wandb_resume.sh"
}

@test "train-resume --lib after uv tool install (a symlink into uv's tool venv) is that venv's library" {
  local tool python
  tool_venv uv
  python=$(python3 -c 'import sys; print(sys.executable)')
  copy_source "$BATS_TEST_TMPDIR/src"
  export UV_TOOL_DIR=$BATS_TEST_TMPDIR/uv-tools UV_TOOL_BIN_DIR=$BATS_TEST_TMPDIR/uv-bin
  export UV_CACHE_DIR=$BATS_TEST_TMPDIR/uv-cache
  run -0 "$tool" tool install --python "$python" "$BATS_TEST_TMPDIR/src"
  assert [ -L "$UV_TOOL_BIN_DIR/train-resume" ]
  assert_lib_sources "$UV_TOOL_BIN_DIR/train-resume" \
    "$UV_TOOL_DIR/train-resume/share/train-resume/lib/wandb_resume.sh"
}

@test "pip install prints nothing but pip's own lines" {
  local venv=$BATS_TEST_TMPDIR/venv
  copy_source "$BATS_TEST_TMPDIR/src"
  python3 -m venv "$venv"
  run -0 --separate-stderr "$venv/bin/pip" install -q --disable-pip-version-check \
    "$BATS_TEST_TMPDIR/src"
  # No deprecation or packaging warnings from our pyproject.toml (the machine's own
  # pip configuration may add lines about its package indexes: those are not ours).
  refute_output --partial 'Warning'
  refute_output --partial 'deprecated'
  refute_stderr --partial 'deprecated'
  refute_stderr --partial 'SetuptoolsDeprecationWarning'
}

@test "make install puts a train-resume that finds its library through a symlink" {
  run -0 make -C "$ROOT" install PREFIX="$WORK/prefix" DESTDIR=
  assert [ -L "$WORK/prefix/bin/train-resume" ]
  run -0 --separate-stderr "$WORK/prefix/bin/train-resume" -o "$OUT" -- printenv WANDB_RESUME
  assert_output allow
  run -0 --separate-stderr env -u PYTHONPATH "$WORK/prefix/bin/train-resume" -o "$OUT" -- \
    printenv PYTHONPATH
  assert_output "$WORK/prefix/lib/train-resume/train_resume/bootstrap:$WORK/prefix/lib/train-resume"
  assert [ -f "$WORK/prefix/lib/train-resume/train_resume/bootstrap/sitecustomize.py" ]
  ln -s "$WORK/prefix/bin/train-resume" "$WORK/tr-link"
  run -0 --separate-stderr "$WORK/tr-link" --version
  # Nothing was written into the repo.
  run -0 git -C "$ROOT" status --porcelain --ignored=no -- dir
  assert_output ''
}

@test "--version agrees in bash, the Python package and the installed package's metadata" {
  local venv=$BATS_TEST_TMPDIR/venv
  pip_install "$venv"
  local bash_version py_version meta_version
  bash_version=$("$TR" --version)
  py_version=$(PYTHONPATH=$ROOT python3 -c 'import train_resume; print(train_resume.__version__)')
  meta_version=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("train-resume"))')
  assert_equal "$bash_version" "train-resume $py_version"
  assert_equal "$meta_version" "$py_version"
  run -0 "$venv/bin/train-resume" --version
  assert_output "$bash_version"
}

@test "make help lists every target of the Makefile" {
  local targets
  targets=$(grep -oE '^[a-z][a-z-]*:' "$ROOT/Makefile" | tr -d : | sort -u)
  run -0 make -s -C "$ROOT" help
  local target
  for target in $targets; do
    grep -qE "^  make $target +[^ ]" <<<"$output" || fail "make help does not list: $target"
  done
}
