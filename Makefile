# maintenance_flags — one-command demo and test suite.
# `make demo` and `make test` work on a fresh machine: they install what they need.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
MANAGE := $(BIN)/python testproject/manage.py
PYTEST_ARGS ?=
APT_PACKAGES := chromium chromium-driver libmariadb-dev pkg-config wrk gettext

.PHONY: demo test lint types test-sqlite test-postgres test-mariadb coverage \
        sysdeps venv services lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv

# System packages (Debian): the browser for the browser tests, MariaDB headers for mysqlclient, wrk.
sysdeps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(UV) pip install --quiet --python $(BIN)/python -r requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

venv: sysdeps $(VENV)/.installed

# ---------------------------------------------------------------------------------------------
demo: venv
	$(MANAGE) migrate --noinput
	$(MANAGE) demo_setup
	@echo "Serving http://127.0.0.1:8000/ — admin at /admin/ (admin / admin). Ctrl-C to stop."
	$(MANAGE) runserver 127.0.0.1:8000

# ---------------------------------------------------------------------------------------------
test: venv services lint types test-sqlite test-postgres test-mariadb coverage

services:
	@bash .ci/services.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: venv
	$(BIN)/mypy

PYTEST := $(BIN)/python -m pytest --cov --cov-append --cov-report= $(PYTEST_ARGS)

test-sqlite: venv
	rm -f .coverage .coverage.*
	MF_DB=sqlite $(PYTEST) -n 2

test-postgres: venv
	MF_DB=postgres $(PYTEST) -n 2 -m "not browser"

test-mariadb: venv
	MF_DB=mariadb $(PYTEST) -n 2 -m "not browser"

coverage: venv
	$(BIN)/coverage report --fail-under=100

# Regenerate the lock file from pyproject.toml (all dependency groups, for Python 3.11+).
lock: $(BIN)/python
	$(UV) pip compile pyproject.toml --group test --group lint --group dev --python-version 3.11 --quiet -o requirements.lock

clean:
	rm -rf $(VENV) .venv-package .coverage* htmlcov dist build .nox .mypy_cache .ruff_cache .pytest_cache demo.sqlite3 artifacts

# Targets contributed by the bench, stress and matrix harnesses (bench/, stress/, matrix/).
-include bench/Makefile.inc
-include stress/Makefile.inc
-include matrix/Makefile.inc
