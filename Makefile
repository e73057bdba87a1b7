# train-resume: everything the project needs is installed by these rules, into the
# repo (.venv for Python tools and the ML stack, .deps for bats), without root;
# jq, the one system dependency, is installed with apt-get when we are root.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
PREFIX ?= /usr/local
VENV := .venv
DEPS := .deps
BATS := $(DEPS)/node_modules/bats/bin/bats
BATS_VERSION := 1.13.0
BATS_SUPPORT_VERSION := 0.3.0
BATS_ASSERT_VERSION := 2.2.4
SHELL_FILES := bin/train-resume lib/wandb_resume.sh $(wildcard lib/wandb_resume/*.bash) $(wildcard tests/*.bats tests/test_helper/*.bash tests/slurm/*.sh tests/python/shapes/*.sh examples/slurm/*.sbatch .ci/run)
PY_FILES := $(wildcard train_resume examples tests bench)
N ?= 20
SEED ?=

.PHONY: help jq-check deps venv-ml lint test test-bats test-py demo install uninstall fixtures bench trials clean test-slurm

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(VENV)/.dev-stamp: requirements/dev.txt
	@echo "== Python tools (pytest, ruff, shellcheck) into $(VENV)"
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements/dev.txt
	@touch $@

$(VENV)/.ml-stamp: requirements/ml.txt requirements/constraints.txt pyproject.toml setup.py train_resume/bootstrap/train-resume.pth $(VENV)/.dev-stamp
	@echo "== ML stack (torch CPU, wandb, transformers, trl, ...) into $(VENV): about a minute, once"
	@$(VENV)/bin/pip install -q --disable-pip-version-check torch==2.13.0
	@$(VENV)/bin/pip install -q --disable-pip-version-check -c requirements/constraints.txt -r requirements/ml.txt
	@$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

$(DEPS)/.bats-stamp:
	@echo "== bats-core $(BATS_VERSION), bats-support, bats-assert into $(DEPS)"
	@command -v npm >/dev/null || { echo "npm is needed to install bats-core (apt-get install npm)"; exit 1; }
	@npm install --silent --no-audit --no-fund --prefix $(DEPS) \
	  bats@$(BATS_VERSION) bats-support@$(BATS_SUPPORT_VERSION) bats-assert@$(BATS_ASSERT_VERSION) >/dev/null
	@touch $@

jq-check: ## check for jq; install it with apt-get when root
	@command -v jq >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "== jq (apt-get)"; apt-get update -qq && apt-get install -y -qq jq >/dev/null; \
	  else \
	    echo "jq is missing: install it (Debian/Ubuntu: sudo apt-get install jq;" \
	         "RHEL: sudo dnf install jq; macOS: brew install jq), then run make again"; exit 1; \
	  fi; }

deps: $(VENV)/.dev-stamp $(DEPS)/.bats-stamp jq-check ## install the test tools (bats, shellcheck, ruff, pytest; jq when root)

venv-ml: $(VENV)/.ml-stamp ## install the ML stack for the demo and the end-to-end tests

# shfmt covers every shell file, the .bats ones too (shfmt >= 3.7 reads them as bats from their shebang).
lint: deps ## shellcheck, shfmt and ruff, zero findings
	$(VENV)/bin/shellcheck -x $(SHELL_FILES)
	$(VENV)/bin/shfmt -i 2 -ci -d $(SHELL_FILES)
	$(VENV)/bin/ruff check $(PY_FILES)
	$(VENV)/bin/ruff format --check $(PY_FILES)

test-bats: deps venv-ml ## the bats suites (tests/*.bats; sync.bats reads .wandb files with the ML stack's wandb)
	$(BATS) tests/

test-py: deps venv-ml ## the pytest suites (tests/python), end-to-end runs included
	$(VENV)/bin/python -m pytest -q tests/python

test: deps venv-ml lint test-bats test-py ## everything: deps, lint, bats and pytest suites

demo: venv-ml ## the tiny GRPO run, killed and resumed through train-resume
	$(VENV)/bin/python examples/demo.py

fixtures: venv-ml ## re-record tests/fixtures from real W&B and TRL runs
	$(VENV)/bin/python tests/fixtures/record.py
	$(VENV)/bin/python tests/fixtures/sync/record.py
	$(VENV)/bin/python tests/fixtures/record_saves.py

install: ## install into $(PREFIX) (bin/train-resume, lib, the Python package)
	@dest="$(DESTDIR)$(PREFIX)"; \
	install -d "$$dest/lib/train-resume/bin" "$$dest/lib/train-resume/lib/wandb_resume" \
	  "$$dest/lib/train-resume/train_resume/bootstrap" "$$dest/bin"; \
	install -m 755 bin/train-resume "$$dest/lib/train-resume/bin/"; \
	install -m 644 lib/wandb_resume.sh "$$dest/lib/train-resume/lib/"; \
	install -m 644 lib/wandb_resume/*.bash lib/wandb_resume/shared.env "$$dest/lib/train-resume/lib/wandb_resume/"; \
	install -m 644 train_resume/*.py "$$dest/lib/train-resume/train_resume/"; \
	install -m 644 train_resume/bootstrap/*.py "$$dest/lib/train-resume/train_resume/bootstrap/"; \
	ln -sfn ../lib/train-resume/bin/train-resume "$$dest/bin/train-resume"; \
	echo "installed $$dest/bin/train-resume"

uninstall: ## remove what install put in $(PREFIX)
	rm -rf "$(DESTDIR)$(PREFIX)/lib/train-resume" "$(DESTDIR)$(PREFIX)/bin/train-resume"

clean: ## remove the installed tools and the runs
	rm -rf $(VENV) $(DEPS) runs

trials: venv-ml ## kill -9 a tiny GRPO run N times (N=20; SEED=...), also inside saves, resume, check
	$(VENV)/bin/python bench/trials.py $(N) $(SEED)

bench: venv-ml ## time the decision on synthetic trees against a Python reference and jq
	$(VENV)/bin/python bench/bench.py 7

test-slurm: deps venv-ml ## preemption on a real one-host SLURM (root; installs slurm-wlm and munge)
	@[ "$$(id -u)" = 0 ] || { echo "make test-slurm: needs root to install and run SLURM (slurmd); CI runs as root" >&2; exit 1; }
	$(VENV)/bin/python -m pytest -q tests/slurm
