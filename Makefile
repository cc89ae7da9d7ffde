# The interface to this project: setup, test, demo, lint, bench. CI calls the same targets.
# The venvs are built on what Lambda runs (python3.13, on PATH or from pyenv) when this machine has
# it, else on the newest Python >= 3.11 found (.ci/find-python); `make setup PYTHON=...` overrides.
RUNTIME_PYTHON := 3.13
ifndef PYTHON
PYTHON := $(shell sh .ci/find-python)
endif
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# One marker per Python version: a .venv built on another version is rebuilt, not reused.
VENV_MARK := $(VENV)/.python-$(PYTHON_VERSION)
# checkov gets its own venv: its dependency pins clash with requirements.lock.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# So do aws-sam-translator (pydantic~=2.13) and aws-lambda-builders: the template as AWS sees it
# (the SAM transform, for the IAM recorder of the test suite and for `make deploy-check`).
DEPLOY_VENV := .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed

.PHONY: setup test demo demo-long lint checkov deploy-venv deploy-check bench chaos clean

setup: $(STAMP)

$(VENV_MARK):
	@test -n "$(PYTHON_VERSION)" || { echo "make setup: no Python >= 3.11 found; install Python $(RUNTIME_PYTHON) (what Lambda runs) or pass PYTHON=/path/to/python3"; exit 1; }
	@if [ "$(PYTHON_VERSION)" != "$(RUNTIME_PYTHON)" ]; then echo "make setup: Python $(RUNTIME_PYTHON) (what Lambda runs) not found; using $(PYTHON) (Python $(PYTHON_VERSION)). Install $(RUNTIME_PYTHON) (e.g. pyenv install $(RUNTIME_PYTHON)) to test on the runtime's version."; fi
	@if [ -d $(VENV) ]; then echo "make setup: $(VENV) is $$($(BIN)/python -V 2>&1 || echo unusable), not Python $(PYTHON_VERSION): rebuilding it"; fi
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	touch $@

$(STAMP): $(VENV_MARK) requirements-dev.txt requirements.lock layers/common/requirements.txt pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c requirements.lock
	# The project itself: importable from the venv (wanedit from the layer, local/ and functions/
	# from the repo) and the `wanedit` command; no build step, so edits take effect at once.
	$(BIN)/python -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'wanedit-dev.pth').write_text('$(CURDIR)/layers/common\n$(CURDIR)\n')"
	printf '#!/bin/sh\nexec "%s" -m cli "$$@"\n' "$(CURDIR)/$(BIN)/python" > $(BIN)/wanedit
	chmod +x $(BIN)/wanedit
	touch $(STAMP)

# The suite includes the IAM recorder (tests/iam), which needs the SAM transform from $(DEPLOY_VENV).
test: setup $(DEPLOY_STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# Beside ruff's own rules: the core stays readable — no function over complexity 10 or 50 lines, no
# module of layers/common/wanedit over 400 lines (tools/sizes.py); mypy covers the tests and benches too.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff check --select C901 --config "lint.mccabe.max-complexity = 10" layers functions
	$(BIN)/python -m tools.sizes layers functions
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml
	$(MAKE) --no-print-directory checkov

$(CHECKOV_STAMP): requirements-checkov.txt requirements-checkov.lock
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt -c requirements-checkov.lock
	touch $(CHECKOV_STAMP)

deploy-venv: $(DEPLOY_STAMP)

$(DEPLOY_STAMP): requirements-deploy.txt requirements-deploy.lock $(VENV_MARK)
	test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-deploy.txt -c requirements-deploy.lock
	touch $(DEPLOY_STAMP)

# The template as AWS receives it: SAM transform + cfn-lint for both bucket modes, both layers built
# for arm64 (ELF architecture, sizes) and for the host (handlers import from them on Python 3.13).
deploy-check: setup $(DEPLOY_STAMP)
	$(BIN)/python -m pytest -m deploy tests/infra/test_deploy.py -p no:cacheprovider

# Security scan of the template (SAM resources included, Globals applied). Every deliberate
# exception is a Metadata checkov skip on its resource, with the reason next to it.
checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download

demo: setup
	$(BIN)/python -m local.demo

demo-long: setup
	$(BIN)/python -m local.demo --long

bench: setup
	$(BIN)/python -m bench

# The chaos suite at length: CHAOS_SCHEDULES seeded schedules of combined faults from seed
# CHAOS_FIRST_SEED on (make test runs seeds 0-199; this goes on from there). Its figures are printed
# at the end and recorded in bench/RESULTS.md. The default count fits 20 minutes on this 2-core box
# when other sessions load it (60 took 20.6 min at load 12, bench/RESULTS.md "Chaos");
# CHAOS_SCHEDULES=3000 for a night's run.
CHAOS_SCHEDULES ?= 50
CHAOS_FIRST_SEED ?= 200
chaos: setup $(DEPLOY_STAMP)
	CHAOS_SCHEDULES=$(CHAOS_SCHEDULES) CHAOS_FIRST_SEED=$(CHAOS_FIRST_SEED) $(BIN)/python -m pytest tests/chaos -n 2 --dist loadgroup -q -p no:cacheprovider

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(DEPLOY_VENV) demo-output .wanedit .pytest_cache .mypy_cache .ruff_cache .aws-sam
