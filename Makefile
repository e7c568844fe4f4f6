# The two commands of the README's quick start, and what CI runs.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROJECT ?= demo

.PHONY: demo test setup setup-test browser lint typecheck-links

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install -q -e .

setup-test: $(BIN)/python
	$(BIN)/pip install -q -e ".[test]"

# Chromium for the browser tests, from Debian's packages (CI runs as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

# 1. build the demo county and serve its map (http://127.0.0.1:8000)
demo: setup
	$(BIN)/sanigrid demo --project $(PROJECT) --serve

# mypy checks the installed names (sanigrid.layers, …) through links to the repository folders.
typecheck-links:
	@mkdir -p build/typecheck/sanigrid
	@for d in layers geo web scripts; do ln -sfn ../../../$$d build/typecheck/sanigrid/$$d; done

lint: setup-test typecheck-links
	$(BIN)/ruff check .
	$(BIN)/mypy

# 2. install everything the tests need and run them (lint and type check included). A local PostGIS
#    (Debian's postgresql-15-postgis-3, started here) runs the PostGIS store tests; without one they skip.
test: setup-test browser typecheck-links
	$(BIN)/ruff check .
	$(BIN)/mypy
	PG="$$(bash scripts/postgis_test_server.sh | tail -n 1)" || PG=""; \
	  case "$$PG" in postgresql://*) ;; *) echo "no local PostGIS: its tests will be skipped"; PG="";; esac; \
	  SANIGRID_TEST_PG="$$PG" $(BIN)/pytest -q --durations=15
