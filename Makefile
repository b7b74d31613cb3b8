# Two commands do all the set-up on a fresh machine (Python 3.11 and make):
#   make run    create .venv from requirements.lock (the runtime: no Spark, no test tools), run the
#               pipeline (dvc repro) on the default data, then publish the at-risk list (churn publish)
#   make test   create .venv from requirements.lock, add requirements-dev.lock (pytest, ruff,
#               pyspark, deltalake, playwright ...: the same pins plus the test tools) and run the suite
#   make test-fast   only the fast layers (unit, property, contract): the edit-test loop
#   make app    the marketing web page over the published lists (churn app, on 127.0.0.1:8050)
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run app test test-fast lint format bench lock clean-env reset

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/python -c "import churn, lightgbm, duckdb, mlflow, dvc" 
	touch $(STAMP)

# the test and lint tools and the Spark extra the tests run on, on top of the runtime: every package
# of requirements.lock has the same pin and hashes in requirements-dev.lock (tests/contract/test_lock_files.py)
$(DEV_STAMP): $(STAMP) requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/python -c "import pytest, hypothesis, xdist, pyspark, deltalake, playwright, sklift"
	touch $(DEV_STAMP)

# dvc repro needs a git repository; a downloaded tarball gets a local one (no commits needed).
# No DVC stage writes the published-lists record, so the demo's simulated past campaigns (written
# by the generate stage) enter it through `churn import-lists`, between the stages that make the
# data and the ledger stage that reads them (the same file again records nothing). After
# `churn init` the file is gone and the step is skipped.
DEMO_LISTS := data/raw/campaign_lists.csv
run: $(STAMP)
	test -d .git || git init -q
	$(BIN)/churn check
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro ingest
	test ! -f $(DEMO_LISTS) || $(BIN)/churn import-lists $(DEMO_LISTS)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/churn publish

# the marketing page over the published lists (after `make run`): http://127.0.0.1:8050/
app: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/churn app

test: $(DEV_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

test-fast: $(DEV_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "unit or property or contract"

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(DEV_STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# Regenerate the lock files after changing dependencies in pyproject.toml (needs uv): the dev lock
# first (everything the tests need), then the runtime lock constrained to its pins, so the two agree.
lock:
	uv pip compile pyproject.toml --extra dev --extra app --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes -o requirements-dev.lock
	uv pip compile pyproject.toml --extra app -c requirements-dev.lock --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes -o requirements.lock

clean-env:
	rm -rf $(VENV)

# Forget every run: pipeline data, models, MLflow runs and registry, published lists.
# Use it before pointing the pipeline at your own data (README: "Using your own data").
reset:
	rm -rf data/raw data/interim data/features data/scores data/ledger data/uplift \
	  models/challenger models/evaluation models/champion exports/at_risk \
	  mlflow.db mlartifacts .churn dvc_plots \
	  reports/metrics.json reports/segments.json reports/plots
