# One entry point for a new machine: `make dev` runs the project, `make test` tests it.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_DIR ?= $(CURDIR)/data
DEMO_SIZE ?= 5000
DEMO_SEED ?= 42
## The demo's data ends when it is generated, so the event-time freshness checks of a fresh
## demo pass (the generator's default ends on 2026-02-01: byte-identical output for a seed).
DEMO_ENDS_AT ?= --ends-at now
HOST ?= 127.0.0.1
PORT ?= 3000
export DAGSTER_HOME ?= $(DATA_DIR)/dagster_home
# dbt (and dagster-dbt's manifest preparation under `dagster dev`) must find the venv's dbt.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install dev demo-data dbt-manifest dagster-home browser test test-fast lint format bench bench-postgres clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Demo data, only into a landing folder that has never existed: after the first run has
## ingested the drops the folder holds only the manifest, and a user's own data folder
## (DATA_DIR=...) must never receive demo files. Written beside it, then renamed into place,
## so an interrupted generation leaves no half landing folder. `make clean` starts over.
demo-data: install
	@if [ -e $(DATA_DIR)/landing ]; then \
		echo "$(DATA_DIR)/landing exists: not generating demo data (make clean to start over)"; \
	else \
		rm -rf $(DATA_DIR)/.landing.partial && mkdir -p $(DATA_DIR) && \
		$(PY) -m assets_project.demo generate --size $(DEMO_SIZE) --seed $(DEMO_SEED) \
			$(DEMO_ENDS_AT) --out $(DATA_DIR)/.landing.partial && \
		mv $(DATA_DIR)/.landing.partial $(DATA_DIR)/landing; \
	fi

## The dbt manifest that the Dagster dbt assets are built from. Parsed with the paths runs use
## (LakeResource exports them to dbt), so dbt's partial parsing holds: a changed profile
## means a full parse on every dbt run. deploy/Dockerfile runs the same script at build time.
dbt-manifest: install
	DATA_DIR=$(DATA_DIR) DBT=$(CURDIR)/$(VENV)/bin/dbt deploy/dbt-manifest.sh

## The dbt files that repeat contract facts (the raw sources YAML, the contract_values macro of
## the enums), regenerated from assets_project/contracts after a contract changes.
.PHONY: dbt-yaml
dbt-yaml: install
	$(PY) -m assets_project contracts generate

## The instance settings (deploy/dagster-home.sh, which the containers of deploy/ run too):
## dagster.yaml, plus Dagster's state in PostgreSQL when DAGSTER_STORAGE=postgres
## (deploy/dagster.postgres.yaml; connection from DAGSTER_PG_HOST, DAGSTER_PG_PORT,
## DAGSTER_PG_DB, DAGSTER_PG_USER, DAGSTER_PG_PASSWORD), plus the steps' stdout/stderr in S3
## when DAGSTER_COMPUTE_LOGS=s3 (deploy/dagster.s3-logs.yaml; bucket from
## DAGSTER_COMPUTE_LOGS_BUCKET, credentials and endpoint from boto3's AWS_* environment).
## The defaults keep the embedded SQLite storage and local compute logs under DAGSTER_HOME.
DAGSTER_STORAGE ?= sqlite
DAGSTER_COMPUTE_LOGS ?= local
dagster-home:
	DAGSTER_STORAGE=$(DAGSTER_STORAGE) DAGSTER_COMPUTE_LOGS=$(DAGSTER_COMPUTE_LOGS) \
		DAGSTER_RUN_LAUNCHER=local deploy/dagster-home.sh

## The UI and the daemon; once the UI answers, its URL and three things to try are printed.
## dagster dev runs in the foreground (exec) so that Ctrl-C reaches it; the welcome watches its
## pid and ends with it.
dev: demo-data dbt-manifest dagster-home
	@$(PY) -m assets_project.demo.welcome --url http://$(HOST):$(PORT) --pid $$$$ \
		--data-dir $(DATA_DIR) & \
	exec $(PY) -c "$$RESTORE_SIGINT" $(VENV)/bin/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

## Runs its arguments with SIGINT at its default: a shell that starts `make dev` in the
## background (`make dev &`, nohup, a script) ignores SIGINT, and Dagster gives SIGTERM the
## disposition of SIGINT, so `dagster dev` could then be stopped by neither.
export RESTORE_SIGINT := import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])

## Debian's Chromium for the UI tests (Playwright drives it; it downloads no browser itself).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "chromium missing: install it (apt-get install chromium) or the UI tests are skipped"; fi; }

test: lint dbt-manifest browser
	$(PY) -m pytest

test-fast: lint dbt-manifest
	$(PY) -m pytest -m "not slow"

## What CI enforces before the tests: ruff (lint + format), mypy (configured in pyproject.toml)
## and sqlfluff on the dbt SQL (dbt_project/.sqlfluff; jinja templater, no warehouse needed).
## .pre-commit-config.yaml runs the same commands.
lint: install
	$(VENV)/bin/ruff check assets_project tests bench
	$(VENV)/bin/ruff format --check assets_project tests bench
	$(VENV)/bin/mypy
	cd dbt_project && ../$(VENV)/bin/sqlfluff lint models tests macros

format: install
	$(VENV)/bin/ruff check --fix assets_project tests bench
	$(VENV)/bin/ruff format assets_project tests bench
	cd dbt_project && ../$(VENV)/bin/sqlfluff fix models tests macros

## Benchmarks (see BENCHMARKS.md); pandera and pyinstrument come with the bench extra.
## The pipeline set at 1e5 and 1e6 events, written into BENCHMARKS.md; BENCH_ARGS=--large
## adds 1e7 events. Other cases: `python -m bench validation|postgres|kafka`.
bench: install dbt-manifest
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[bench]'
	$(PY) -m bench pipeline --write $(BENCH_ARGS)

## PostgreSQL extraction at 1e5 and 1e6 rows (DATABASE_URL, or the machine's cluster as root).
bench-postgres: install
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[bench]'
	$(PY) -m bench postgres --repeat 3

clean:
	rm -rf $(DATA_DIR) dbt_project/target dbt_project/logs
