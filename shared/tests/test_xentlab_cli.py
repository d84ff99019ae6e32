"""The xentlab command on a throwaway workspace: list, ledger, new (and the template's smoke run)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xentlab.cli import main
from xentlab.testing import run_smoke
from xentlab.workspace import LEDGER_END, LEDGER_START


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["shared", "packages/*"]\n')
    (tmp_path / "README.md").write_text(f"# ws\n\n{LEDGER_START}\nstale\n{LEDGER_END}\n\nafter\n")
    (tmp_path / "packages").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_new_list_ledger_roundtrip(workspace, capsys, monkeypatch):
    assert main(["new", "demo-paper", "--title", "A Demo", "--arxiv", "1234.56789"]) == 0
    pkg = workspace / "packages" / "demo-paper"
    for rel in (
        "pyproject.toml",
        "README.md",
        "reproduce.py",
        "src/demo_paper/__init__.py",
        "src/demo_paper/method.py",
        "tests/test_demo_paper_method.py",
    ):
        assert (pkg / rel).is_file(), rel
    assert 'name = "demo-paper"' in (pkg / "pyproject.toml").read_text()
    assert main(["new", "demo-paper"]) == 2  # exists
    assert main(["new", "Bad_Name"]) == 2

    # the template's reproduce.py runs as generated
    monkeypatch.syspath_prepend(str(pkg / "src"))
    result = run_smoke(pkg / "reproduce.py", workspace / "smoke-out")
    assert result["package"] == "demo-paper" and result["paper"]["arxiv"] == "1234.56789"
    sys.modules.pop("demo_paper.method", None)
    sys.modules.pop("demo_paper", None)

    # pretend a cpu result was committed, then the ledger picks it up
    (pkg / "results" / "cpu").mkdir(parents=True)
    result["scale"] = "cpu"
    (pkg / "results" / "cpu" / "result.json").write_text(json.dumps(result))
    assert main(["ledger", "--check"]) == 1
    assert main(["ledger"]) == 0
    readme = (workspace / "README.md").read_text()
    assert "stale" not in readme and "[`demo-paper`](packages/demo-paper/README.md)" in readme
    assert readme.endswith("after\n")
    assert main(["ledger", "--check"]) == 0

    capsys.readouterr()
    assert main(["list"]) == 0
    assert "demo-paper" in capsys.readouterr().out
    assert main(["list", "demo-paper"]) == 0
    assert "learns" in capsys.readouterr().out


def test_new_package_passes_the_repo_lint_and_format(workspace):
    # CI runs `ruff check` and `ruff format --check` on the whole tree, so a package started from the
    # template must pass both before anyone edits it (import order included: the paper's own module
    # is third-party to ruff, xentlab is first-party).
    assert (
        main(
            [
                "new",
                "lint-demo",
                "--title",
                "A Title Long Enough To Push The Paper Line Past One Hundred And Ten Characters",
            ]
        )
        == 0
    )
    config = Path(__file__).resolve().parents[2] / "pyproject.toml"
    pkg = workspace / "packages" / "lint-demo"
    for cmd in (["check", "--no-cache"], ["format", "--no-cache", "--check"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *cmd, "--config", str(config), str(pkg)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unknown_package_is_one_clear_line(workspace, capsys):
    assert main(["list", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown package 'nope'" in err[0]


def test_unknown_command(workspace, capsys):
    assert main(["frobnicate"]) == 2
    assert capsys.readouterr().err.startswith("xentlab: error:")
