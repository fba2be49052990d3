"""The version matrix: Python 3.11–3.13 × Django 5.2 LTS, 6.0, 6.1 × SQLite, PostgreSQL, MariaDB.

    nox -s tests                 # every possible cell (21: Django 6.x needs Python >= 3.12)
    nox -t ci                    # what `make matrix` (and CI) runs: every cell `make test` does not (18)
    nox -t quick                 # a faster selection (10 cells; see docs/deployment.md)
    nox -s "tests-3.12(django='6.0', db='postgres')"   # one cell
    nox -l                       # list the cells

Each cell gets its own uv-made virtualenv with the project, its `test` dependency group
(and `mariadb` for the MariaDB cells) pinned by requirements.lock, and the cell's Django (the
lock's Django pin is dropped). The suite runs with `-m "not browser and not celery"` (`make test`
runs the Celery processes) on two xdist workers; the database comes from ``MF_DB`` like everywhere else in the project.

Each cell writes its coverage data to .nox/coverage/.coverage.<cell>; `make matrix` combines
them (with `make test`'s .coverage when present) and reports: by hand,
``coverage combine --append .nox/coverage && coverage report``.

Interpreters are nox's to find (PATH, pyenv, uv): nothing here changes the environment. With
pyenv, make the versions visible first, e.g. ``PYENV_VERSION=3.13.0:3.12.1:3.11.7 nox ...``;
`make matrix` does that for every installed pyenv 3.x.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import nox

ROOT = Path(__file__).resolve().parent

PYTHONS = ("3.11", "3.12", "3.13")
DJANGOS = {"5.2": "Django>=5.2,<5.3", "6.0": "Django>=6.0,<6.1", "6.1": "Django>=6.1,<6.2"}
DATABASES = ("sqlite", "postgres", "mariadb")
# Django 6.0 and later need Python 3.12 or later: those are the only pairs left out.
MIN_PYTHON = {"5.2": (3, 10), "6.0": (3, 12), "6.1": (3, 12)}
# Cells CI runs (`nox -t ci`, what `make matrix` runs): the whole matrix except the lock's cell
# (Python 3.11, Django 5.2), which `make test` already runs on all three databases: 18 cells.
# `nox -t quick` is a faster selection for development: every Python × Django pair on SQLite,
# plus PostgreSQL and MariaDB for Django 6.0 and 6.1 on the newest Python (10 cells).
MAKE_TEST_CELL = ("3.11", "5.2")
CI_SERVER_PYTHON = "3.13"
TIMINGS = ROOT / ".nox" / "timings.tsv"
COVERAGE_DIR = ROOT / ".nox" / "coverage"

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests"]


# --- the matrix ---------------------------------------------------------------------------


def _cells() -> list[Any]:
    cells = []
    for python in PYTHONS:
        for django in DJANGOS:
            if tuple(int(p) for p in python.split(".")) < MIN_PYTHON[django]:
                continue
            for db in DATABASES:
                covered_by_make_test = (python, django) == MAKE_TEST_CELL
                quick = not covered_by_make_test and (
                    db == "sqlite" or (python == CI_SERVER_PYTHON and django != "5.2")
                )
                tags = [] if covered_by_make_test else ["ci"]  # CI: every cell `make test` does not run
                tags += ["quick"] if quick else []
                tags += [f"py{python}", f"django{django}", db]
                cells.append(nox.param(python, django, db, tags=tags))
    return cells


def _constraints(session: nox.Session) -> Path:
    """requirements.lock without its Django pin: the cell chooses Django."""
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    kept = [line for line in lines if not re.match(r"^django==", line, re.IGNORECASE)]
    path = Path(session.create_tmp()) / "constraints.txt"
    path.write_text("\n".join(kept) + "\n")
    return path


@nox.session
@nox.parametrize(("python", "django", "db"), _cells())
def tests(session: nox.Session, django: str, db: str) -> None:
    """One cell: install the project for this Python and Django, run the suite on ``db``."""
    started = time.monotonic()
    outcome = "failed"
    try:
        COVERAGE_DIR.mkdir(parents=True, exist_ok=True)
        constraints = _constraints(session)
        groups = ["--group", "test", *(["--group", "mariadb"] if db == "mariadb" else [])]
        session.install("-c", str(constraints), DJANGOS[django], "-e", ".", *groups)
        session.run(
            "python",
            "-c",
            "import sys; from importlib.metadata import version as v; "
            "print('cell: Python', sys.version.split()[0], '· Django', v('django'), '· waffle', v('django-waffle'))",
        )
        session.run(
            "python",
            "-m",
            "pytest",
            "-m",
            "not browser and not celery",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            "--cov",
            "--cov-report=",
            "--cov-fail-under=0",  # one cell covers part: the 100 % is checked on the combined data
            *session.posargs,
            env={
                "MF_DB": db,
                "PYTHONDONTWRITEBYTECODE": "1",
                # pytest-cov merges its workers' files into this one; `make matrix` merges the cells'.
                "COVERAGE_FILE": str(COVERAGE_DIR / f".coverage.py{session.python}-django{django}-{db}"),
            },
        )
        outcome = "passed"
    finally:
        elapsed = time.monotonic() - started
        session.log(f"cell {session.python} · Django {django} · {db}: {outcome} in {elapsed:.0f} s")
        TIMINGS.parent.mkdir(exist_ok=True)
        with TIMINGS.open("a") as timings:
            timings.write(f"{session.python}\t{django}\t{db}\t{outcome}\t{elapsed:.1f}\n")
