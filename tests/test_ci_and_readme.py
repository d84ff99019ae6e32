"""The README's two commands are the ones CI and the packages actually use."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    m = re.search(r'^TEST_CMD="([^"]+)"', ci, re.M)
    assert m, ".ci/run must define TEST_CMD"
    assert f"\n{m.group(1)}\n" in (ROOT / "README.md").read_text()
    assert "uv sync --locked" in ci


def test_readme_reproduce_command_names_a_real_package():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"^uv run --package (\S+) packages/(\S+)/reproduce.py$", readme, re.M)
    assert m and m.group(1) == m.group(2)
    assert (ROOT / "packages" / m.group(1) / "reproduce.py").is_file()
