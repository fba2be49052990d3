"""The versions we claim agree everywhere, and the wheel check catches a broken wheel.

Building the real wheel is `make package` (matrix/check_package.py); these tests are fast.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def noxfile_constant(name: str) -> object:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in noxfile.py")


def classifier_versions(framework: str) -> list[str]:
    classifiers = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["classifiers"]
    prefix = f"{framework} :: "
    return [c.removeprefix(prefix) for c in classifiers if re.fullmatch(re.escape(prefix) + r"\d+\.\d+", c)]


def readme_requirement(word: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Requirements", 1)[1].split("\n## ", 1)[0]
    line = next(line for line in section.splitlines() if line.startswith(f"- {word} "))
    return re.findall(r"\b\d+\.\d+\b", line.split("(")[0])


def test_python_versions_agree() -> None:
    matrix = list(noxfile_constant("PYTHONS"))  # type: ignore[call-overload]
    assert classifier_versions("Programming Language :: Python") == matrix
    assert readme_requirement("Python") == matrix
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={matrix[0]}"


def test_django_versions_agree() -> None:
    matrix = list(noxfile_constant("DJANGOS"))  # type: ignore[call-overload]
    assert classifier_versions("Framework :: Django") == matrix
    assert readme_requirement("Django") == matrix


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_package", ROOT / "matrix" / "check_package.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_wheel(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, "")
    return path


def package_files() -> list[str]:
    """Every file the tree has in the folders the checker compares, as wheel paths."""
    checker = load_checker()
    names = {"maintenance_flags/py.typed", "maintenance_flags/__init__.py"}
    for folder in ("templates", "migrations", "locale", "templatetags", "management", "contrib"):
        names |= checker.tree_files(f"maintenance_flags/{folder}")
    return sorted(names)


def test_wheel_check_accepts_a_complete_wheel(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "ok.whl", package_files())
    assert load_checker().check_wheel_contents(wheel) == []


@pytest.mark.parametrize(
    ("drop", "add", "complaint"),
    [
        ("maintenance_flags/py.typed", None, "missing the py.typed marker"),
        ("maintenance_flags/migrations/0001_initial.py", None, "missing the first migration"),
        ("maintenance_flags/templates/maintenance_flags/503.html", None, "missing the built-in 503 page"),
        (None, "tests/test_middleware.py", "test code in the wheel"),
        (None, "testproject/settings.py", "test code in the wheel"),
    ],
)
def test_wheel_check_rejects_an_incomplete_wheel(
    tmp_path: Path, drop: str | None, add: str | None, complaint: str
) -> None:
    names = [n for n in package_files() if n != drop] + ([add] if add else [])
    problems = load_checker().check_wheel_contents(make_wheel(tmp_path / "bad.whl", names))
    assert any(complaint in problem for problem in problems), problems


def test_wheel_check_wants_every_locale_file_in_the_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checker = load_checker()
    fake_root = tmp_path / "tree"
    messages = fake_root / "maintenance_flags" / "locale" / "fr" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    (messages / "django.po").write_text("")
    (messages / "django.mo").write_bytes(b"")
    monkeypatch.setattr(checker, "ROOT", fake_root)
    wheel = make_wheel(tmp_path / "nolocale.whl", [n for n in package_files() if "/locale/" not in n])
    problems = checker.check_wheel_contents(wheel)
    assert any("maintenance_flags/locale/fr/LC_MESSAGES/django.mo" in p for p in problems), problems
