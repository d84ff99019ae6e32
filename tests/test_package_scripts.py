"""Every committed pilot or diagnostic script (``packages/<name>/scripts/*.py``) still imports.

The scripts record how a protocol setting was chosen (the README cites their output), but nothing runs them
after their pilot: when a module they import is renamed or a function they call changes, they rot silently
and the README's "run it again" command no longer works. Running them is minutes to hours each, so this checks
the part that rots first and costs nothing: each script's module-level code (imports, constants, the
``reproduce`` module it loads) runs, its work stays behind ``if __name__ == "__main__"``, and every name it
imports anywhere (scripts import inside functions too, e.g. in worker processes) still exists.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

from xentlab.workspace import package_dirs

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for pkg in package_dirs(ROOT) for p in (pkg / "scripts").glob("*.py"))


def _has_main_guard(path: Path) -> bool:
    """True when the module's top level has ``if __name__ == "__main__":``."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            left, comparators = node.test.left, node.test.comparators
            if isinstance(left, ast.Name) and left.id == "__name__":
                if any(isinstance(c, ast.Constant) and c.value == "__main__" for c in comparators):
                    return True
    return False


def _imported_names(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) for every absolute import in the file, at any depth; name None for ``import module``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            out += [(node.module, alias.name) for alias in node.names]
    return out


def _missing_imports(path: Path) -> list[str]:
    missing = []
    for module_name, name in _imported_names(path):
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            missing.append(f"{module_name}: {e}")
            continue
        if name is None or name == "*" or hasattr(module, name):
            continue
        try:  # ``from package import submodule``
            importlib.import_module(f"{module_name}.{name}")
        except ImportError:
            missing.append(f"{module_name}.{name}")
    return missing


def test_there_are_scripts_to_check():
    assert len(SCRIPTS) >= 20, [str(p) for p in SCRIPTS]


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parents[1].name}/{p.name}")
def test_script_imports_and_runs_nothing_on_import(path: Path, monkeypatch):
    assert _has_main_guard(path), f"{path}: its work must sit behind if __name__ == '__main__'"
    # scripts put their package root on sys.path and import its reproduce.py as ``reproduce``: give each one a
    # clean view (every package has a reproduce module) and undo what it did to the interpreter afterwards
    monkeypatch.setattr(sys, "path", [str(path.parents[1]), *sys.path])  # as the scripts do, some in main()
    monkeypatch.delitem(sys.modules, "reproduce", raising=False)
    name = f"_script_{path.parents[1].name.replace('-', '_')}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        assert not _missing_imports(path), f"{path} imports what no longer exists: {_missing_imports(path)}"
    finally:
        sys.modules.pop("reproduce", None)
    assert callable(getattr(module, "main", None)) or any(
        callable(v) for v in vars(module).values() if getattr(v, "__module__", None) == name
    ), f"{path}: no function to run"
