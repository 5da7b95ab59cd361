"""The dependency direction server -> converters, tiling -> cim, checked on the source with ast,
and the top-level packages import from this repository (other PyPI distributions use the same
generic names)."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["cim", "converters", "tiling", "server"]
FORBIDDEN = {
    "cim": {"converters", "tiling", "server", "starlette", "uvicorn", "click"},
    "converters": {"tiling", "server", "starlette", "uvicorn", "pyproj"},
    "tiling": {"converters", "server", "starlette", "uvicorn", "pyproj"},
    "server": {"pyproj"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_dependency_direction(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"{package} has no modules"
    bad = {str(f.relative_to(REPO)): sorted(_imports(f) & FORBIDDEN[package]) for f in files}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"forbidden imports: {bad}"


def test_only_crs_module_imports_pyproj() -> None:
    users = [str(f.relative_to(REPO)) for p in PACKAGES for f in (REPO / p).rglob("*.py") if "pyproj" in _imports(f)]
    assert users == ["cim/crs.py"]


def test_no_http_in_library() -> None:
    for package in ("cim", "converters", "tiling"):
        for f in (REPO / package).rglob("*.py"):
            assert not {"starlette", "httpx", "uvicorn"} & _imports(f), f


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_resolve_inside_repository(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == REPO / package


def test_modules_stay_small() -> None:
    big = {str(f.relative_to(REPO)): n for p in PACKAGES for f in (REPO / p).rglob("*.py")
           if (n := len(f.read_text(encoding="utf-8").splitlines())) > 500}
    assert not big, f"modules over 500 lines (split them): {big}"
