"""The demo project starts: `check` and `migrate` run in a fresh process on a fresh database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.servers  # starts manage.py processes


def manage(*args: str, db: Path) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "testproject.settings", "MF_DB": "sqlite", "MF_DB_NAME": str(db)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "testproject" / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_demo_checks_migrates_and_sets_up(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite3"
    assert "no issues" in manage("check", db=db)
    manage("migrate", "--noinput", db=db)
    out = manage("demo_setup", db=db)
    assert "admin" in out
    assert manage("setmaintenance", "status", db=db).splitlines() == [
        "1 example.com off (off)",
        "all - off (global switch)",
    ]
