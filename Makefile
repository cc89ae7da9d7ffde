# The interface to this project: setup, test, demo, lint, bench. CI calls the same targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov gets its own venv: its dependency pins clash with requirements.lock.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: setup test demo demo-long lint checkov bench chaos clean

setup: $(STAMP)

$(STAMP): requirements-dev.txt requirements.lock layers/common/requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c requirements.lock
	# The project itself: importable from the venv (wanedit from the layer, local/ and functions/
	# from the repo) and the `wanedit` command; no build step, so edits take effect at once.
	$(BIN)/python -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'wanedit-dev.pth').write_text('$(CURDIR)/layers/common\n$(CURDIR)\n')"
	printf '#!/bin/sh\nexec "%s" -m cli "$$@"\n' "$(CURDIR)/$(BIN)/python" > $(BIN)/wanedit
	chmod +x $(BIN)/wanedit
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml
	$(MAKE) --no-print-directory checkov

$(CHECKOV_STAMP): requirements-checkov.txt requirements-checkov.lock
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt -c requirements-checkov.lock
	touch $(CHECKOV_STAMP)

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

# The chaos suite at length: CHAOS_SCHEDULES seeded schedules of combined faults (make test runs
# 200); its figures are printed at the end and recorded in bench/RESULTS.md.
CHAOS_SCHEDULES ?= 3000
chaos: setup
	CHAOS_SCHEDULES=$(CHAOS_SCHEDULES) $(BIN)/python -m pytest tests/chaos -n 2 --dist loadgroup -q

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) demo-output .wanedit .pytest_cache .mypy_cache .ruff_cache .aws-sam
