# maintenance_flags — one-command demo and test suite.
# `make demo` and `make test` work on a fresh machine: they install what they need (as root,
# or with sudo, they apt-get the system packages). `make lint`, `make types`, `make test-unit`
# and `make package` need neither root nor system packages.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
MANAGE := $(BIN)/python testproject/manage.py
PYTEST_ARGS ?=
APT_PACKAGES := chromium chromium-driver libmariadb-dev pkg-config wrk gettext

.PHONY: demo test lint types test-unit test-sqlite test-postgres test-mariadb coverage \
        sysdeps venv venv-base services lock clean

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

# The base venv: the project and every dependency group but `mariadb`, pinned by the lock.
# All wheels: no system packages, no root.
$(VENV)/.installed-base: pyproject.toml requirements.lock | $(BIN)/python
	$(UV) pip install --quiet --python $(BIN)/python -c requirements.lock -e . \
	  --group test --group celery-beat --group lint --group dev
	touch $@

# Everything the lock pins, mysqlclient too (it builds against libmariadb-dev: after sysdeps).
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(UV) pip install --quiet --python $(BIN)/python -r requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

venv-base: $(VENV)/.installed-base
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

# Every pre-commit hook on every file (.pre-commit-config.yaml): pyproject-fmt, django-upgrade,
# ruff check, ruff format, typos, mypy. The hooks that fix files fail the run when they do.
lint: venv-base
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pre-commit run --all-files --show-diff-on-failure

types: venv-base
	$(BIN)/mypy

# mypy on the test suite too: to join `types` (pyproject's [tool.mypy] files) once it passes.
# The inner loop: SQLite, no servers, no browser; no services or system packages needed.
test-unit: venv-base
	MF_DB=sqlite $(BIN)/python -m pytest -n 2 -m "not servers and not browser" $(PYTEST_ARGS)

# Each run adds to .coverage; `coverage` checks the total ([tool.coverage] in pyproject.toml).
PYTEST := $(BIN)/python -m pytest --cov --cov-append --cov-report= --cov-fail-under=0 $(PYTEST_ARGS)

test-sqlite: venv
	$(BIN)/coverage erase
	MF_DB=sqlite $(PYTEST) -n 2

test-postgres: venv
	MF_DB=postgres $(PYTEST) -n 2 -m "not browser"

test-mariadb: venv
	MF_DB=mariadb $(PYTEST) -n 2 -m "not browser"

coverage: venv-base
	$(BIN)/coverage report

# Regenerate the lock file from pyproject.toml (all dependency groups, for Python 3.11+).
lock: $(BIN)/python
	$(UV) pip compile pyproject.toml --group test --group celery-beat --group mariadb --group lint --group dev \
	  --python-version 3.11 --quiet -o requirements.lock

clean:
	rm -rf $(VENV) .venv-package .coverage* htmlcov dist build .nox .mypy_cache .ruff_cache .pytest_cache demo.sqlite3 artifacts

# Targets contributed by the bench, stress and matrix harnesses (bench/, stress/, matrix/).
-include bench/Makefile.inc
-include stress/Makefile.inc
-include matrix/Makefile.inc
