"""Each paper package declares the third-party libraries it imports.

A user installs one package (README: "independently installable"). A package that imports, say,
scikit-learn but does not declare it works today only because some other dependency happens to
pull it in; when that dependency drops it, the package breaks for a reason its own metadata does
not show. So every third-party module a package's code imports (src/, reproduce.py, scripts/,
tests/) must come from a distribution its pyproject.toml names. The one exception: optional,
full-scale-only libraries that the workspace does not install (Liger-Kernel, speechbrain, ...) may
be imported inside a function, which loads them on use with a clear error when missing. Tests may
also import what the workspace's dev group provides (pytest).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from xentlab.workspace import package_dirs

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = package_dirs(ROOT)
DEV_GROUP = {"pytest"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions(pyproject: Path) -> set[str]:
    """Names in ``[project] dependencies`` and every optional-dependency group, normalised (PEP 503)."""
    meta = tomllib.loads(pyproject.read_text())["project"]
    specs = list(meta.get("dependencies", []))
    for group in meta.get("optional-dependencies", {}).values():
        specs += group
    return {_norm(re.split(r"[\s<>=!~;\[(]", s, maxsplit=1)[0]) for s in specs}


def imports(path: Path) -> dict[str, bool]:
    """``{top-level module: imported only inside functions}`` for the absolute imports of a file."""
    found: dict[str, bool] = {}

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            names = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module]
            for name in names:
                top = name.split(".")[0]
                found[top] = found.get(top, True) and inner
            visit(child, inner)

    visit(ast.parse(path.read_text(), filename=str(path)), False)
    return found


@cache
def _distributions_of() -> dict[str, list[str]]:
    return packages_distributions()


def undeclared_imports(pkg: Path, *, dev: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """``{module: [files]}`` of third-party modules a package imports without declaring them.

    A module that is not installed here is an optional library: it is allowed inside functions."""
    own = {pkg.name.replace("-", "_"), "xentlab", "reproduce"}
    declared = declared_distributions(pkg / "pyproject.toml")
    folders = [pkg / "src", pkg / "scripts", pkg / "tests"]
    files = [pkg / "reproduce.py", *(f for d in folders for f in sorted(d.rglob("*.py")))]
    missing: dict[str, list[str]] = {}
    for f in files:
        is_test = pkg / "tests" in f.parents
        for top, lazy in imports(f).items():
            if top in sys.stdlib_module_names or top in own or (is_test and top in dev):
                continue
            installed = _distributions_of().get(top)
            if installed is None and lazy:
                continue  # optional, loaded on use
            if not {_norm(d) for d in installed or [top]} & declared:
                missing.setdefault(top, []).append(str(f.relative_to(pkg)))
    return missing


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_package_declares_what_it_imports(pkg: Path):
    missing = undeclared_imports(pkg, dev=frozenset(DEV_GROUP))
    assert not missing, (
        f"packages/{pkg.name} imports {sorted(missing)} without declaring them in its pyproject.toml "
        f"dependencies: {missing}"
    )


def test_the_check_finds_an_undeclared_import(tmp_path: Path):
    # The check itself can fail: a package importing scipy at module level without declaring it.
    pkg = tmp_path / "demo-pkg"
    (pkg / "src" / "demo_pkg").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(
        '[project]\nname = "demo-pkg"\ndependencies = ["xentlab", "numpy>=1.26"]\n'
    )
    (pkg / "reproduce.py").write_text("import numpy as np\nimport xentlab\n")
    (pkg / "src" / "demo_pkg" / "a.py").write_text(
        "from scipy import stats\n\n\ndef used():\n    import sklearn\n\n\n"
        "def optional():\n    import not_installed_anywhere\n"
    )
    (pkg / "tests").mkdir()
    (pkg / "tests" / "test_a.py").write_text("import pytest\n")
    where = str(Path("src/demo_pkg/a.py"))
    assert undeclared_imports(pkg, dev=frozenset(DEV_GROUP)) == {"scipy": [where], "sklearn": [where]}
    assert "pytest" in undeclared_imports(pkg)  # outside the dev group, pytest is undeclared too
