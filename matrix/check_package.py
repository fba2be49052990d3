"""Build the sdist and wheel, check them, and run the demo project against the installed wheel.

    python matrix/check_package.py [--uv PATH] [--python INTERPRETER] [--keep]

1. ``uv build`` the sdist and the wheel into dist/ (emptied first);
2. ``twine check --strict`` both, and the long description links nothing by a relative path
   (PyPI shows it away from the repository);
3. the wheel holds the templates, the migrations, ``py.typed`` and (if the tree has
   ``maintenance_flags/locale``) every file under it, and nothing from tests/ or testproject/;
4. a fresh virtualenv gets the wheel (its dependencies pinned by requirements.lock), and a
   copy of testproject/ in a temporary directory, away from the repository so that the
   tree's ``maintenance_flags/`` cannot be imported, runs ``check``, ``migrate`` on a new
   SQLite file, and reports where ``maintenance_flags`` was imported from (it must be the
   virtualenv's site-packages);
5. the README's install path, as written: ``git clone`` of this repository and
   ``python -m pip install ./maintenance_flags`` into a fresh virtualenv made by ``python -m venv``.

Exits non-zero with a message on the first failure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "maintenance_flags"
DIST = ROOT / "dist"


class Failure(Exception):
    pass


def run(cmd: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise Failure(f"{cmd[0]} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def build(uv: str) -> tuple[Path, Path]:
    shutil.rmtree(DIST, ignore_errors=True)
    run([uv, "build", "--sdist", "--wheel", "--out-dir", str(DIST), str(ROOT)])
    wheels, sdists = sorted(DIST.glob("*.whl")), sorted(DIST.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise Failure(f"expected one wheel and one sdist in dist/, found {[p.name for p in DIST.iterdir()]}")
    return wheels[0], sdists[0]


def twine_check(twine: str, *files: Path) -> None:
    print(run([twine, "check", "--strict", *map(str, files)]).strip())


def check_long_description(wheel: Path) -> list[str]:
    """Links and images in the wheel's long description must be absolute URLs."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
    body = text.split("\n\n", 1)[1] if "\n\n" in text else ""
    if not body.strip():
        return ["the wheel has no long description"]
    relative = [t for t in re.findall(r"\]\(([^)\s]+)", body) if not re.match(r"[a-z]+:|#", t)]
    return [f"relative links in the long description: {relative}"] if relative else []


def readme_install(python: str, keep: bool) -> None:
    """The README's install commands, as written, from a clone of the repository."""
    tmp = Path(tempfile.mkdtemp(prefix="mf-readme-"))
    try:
        run(["git", "clone", "--quiet", str(ROOT), str(tmp / "maintenance_flags")])
        run([python, "-m", "venv", str(tmp / "venv")])
        pip_python = str(tmp / "venv" / "bin" / "python")
        run([pip_python, "-m", "pip", "install", "--quiet", "./maintenance_flags"], cwd=tmp)
        code = "import maintenance_flags, waffle, re2; print(maintenance_flags.__file__)"
        where = run([pip_python, "-c", code], cwd=tmp / "venv").strip()
        if "site-packages" not in where:
            raise Failure(f"the README's install put maintenance_flags at {where}, not in site-packages")
        print(f"README install path: ok ({where})")
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def tree_files(relative: str) -> set[str]:
    """Files under ROOT/relative (as wheel paths), without caches and compiled bytecode."""
    base = ROOT / relative
    if not base.is_dir():
        return set()
    return {
        path.relative_to(ROOT).as_posix()
        for path in base.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def check_wheel_contents(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    problems = []
    required = {
        f"{PACKAGE}/py.typed": "the py.typed marker",
        f"{PACKAGE}/migrations/__init__.py": "the migrations package",
        f"{PACKAGE}/migrations/0001_initial.py": "the first migration",
        f"{PACKAGE}/templates/{PACKAGE}/503.html": "the built-in 503 page",
        f"{PACKAGE}/templates/{PACKAGE}/banner.html": "the banner template",
        f"{PACKAGE}/contrib/celery.py": "the Celery guard",
        f"{PACKAGE}/contrib/channels.py": "the Channels guard",
    }
    for name, what in required.items():
        if name not in names:
            problems.append(f"missing {what}: {name}")
    for folder in ("templates", "migrations", "locale", "templatetags", "management", "contrib"):
        missing = sorted(tree_files(f"{PACKAGE}/{folder}") - names)
        if missing:
            problems.append(f"{PACKAGE}/{folder} files in the tree but not in the wheel: {missing}")
    leaked = sorted(n for n in names if n.split("/")[0] in {"tests", "testproject"} or "/tests/" in n)
    if leaked:
        problems.append(f"test code in the wheel: {leaked}")
    locale = "present" if tree_files(f"{PACKAGE}/locale") else "absent from the tree (not required)"
    print(f"wheel: {len(names)} files; templates, migrations, py.typed ok; locale {locale}")
    return problems


def smoke_test(wheel: Path, uv: str, python: str, keep: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mf-wheel-"))
    try:
        venv = tmp / "venv"
        run([uv, "venv", "--quiet", "--python", python, str(venv)])
        venv_python = venv / "bin" / "python"
        run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv_python),
                "-c",
                str(ROOT / "requirements.lock"),
                str(wheel),
            ]
        )
        project = tmp / "site"
        shutil.copytree(ROOT / "testproject", project / "testproject", ignore=shutil.ignore_patterns("__pycache__"))
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV", "MF_DB_NAME"}
        }
        env.update(MF_DB="sqlite", MF_DB_NAME=str(tmp / "db.sqlite3"), PYTHONDONTWRITEBYTECODE="1")
        manage = [str(venv_python), "testproject/manage.py"]
        print(run([*manage, "check", "--fail-level", "WARNING"], cwd=project, env=env).strip())
        run([*manage, "migrate", "--noinput", "-v", "0"], cwd=project, env=env)
        shell = [*manage, "shell", "-v", "0", "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"]
        where = run(shell, cwd=project, env=env).strip().splitlines()[-1]
        print(f"{PACKAGE} imported from {where}")
        if not Path(where).resolve().is_relative_to(venv.resolve()) or Path(where).resolve().is_relative_to(ROOT):
            raise Failure(f"{PACKAGE} was imported from {where}, not from the wheel installed in {venv}")
        # The extras: the wheel with [celery,channels] installs them, and the guards import.
        install = [uv, "pip", "install", "--quiet", "--python", str(venv_python), "-c", str(ROOT / "requirements.lock")]
        run([*install, f"{wheel}[celery,channels]"])
        guards = (
            f"import {PACKAGE}.contrib.celery, {PACKAGE}.contrib.channels, testproject.celery_app; print('extras ok')"
        )
        print(run([*manage, "shell", "-v", "0", "-c", guards], cwd=project, env=env).strip().splitlines()[-1])
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bin_dir = Path(sys.executable).parent
    parser.add_argument("--uv", default=str(bin_dir / "uv") if (bin_dir / "uv").exists() else "uv")
    parser.add_argument("--twine", default=str(bin_dir / "twine") if (bin_dir / "twine").exists() else "twine")
    parser.add_argument("--python", default="python3", help="interpreter for the fresh virtualenv")
    parser.add_argument("--keep", action="store_true", help="keep the temporary virtualenv and project")
    args = parser.parse_args()
    try:
        wheel, sdist = build(args.uv)
        twine_check(args.twine, wheel, sdist)
        problems = check_wheel_contents(wheel) + check_long_description(wheel)
        if problems:
            raise Failure("the wheel is incomplete:\n  " + "\n  ".join(problems))
        smoke_test(wheel, args.uv, args.python, args.keep)
        readme_install(args.python, args.keep)
    except Failure as exc:
        print(f"package check FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"package check passed: {wheel.name}, {sdist.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
