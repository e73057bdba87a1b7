#!/usr/bin/env bats
# Installing: `pip install .` into a fresh venv, `make install PREFIX=`, one version
# everywhere, and a `make help` that lists every target. Everything is written under
# $BATS_TEST_TMPDIR (the pip test builds from a copy of the tree, not in the repo).
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
    "$ROOT/README.md" "$1/"
  find "$1" -name __pycache__ -prune -exec rm -rf {} +
}

# A fresh venv at VENV_DIR with train-resume pip-installed from a copy of the tree.
# Arguments: VENV_DIR
pip_install() {
  copy_source "$BATS_TEST_TMPDIR/src"
  python3 -m venv "$1"
  "$1/bin/pip" install -q --disable-pip-version-check "$BATS_TEST_TMPDIR/src"
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
