"""Every paper package obeys the reproduction contract of DESIGN.md, and the README ledger is in sync."""

from __future__ import annotations

import json
import socket
import tomllib
from pathlib import Path

import pytest

from xentlab.repro.units import unit_key
from xentlab.testing import load_reproduce
from xentlab.testing.smoke import validate_result
from xentlab.workspace import excluded_members, ledger_table, package_dirs, render_ledger

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = package_dirs(ROOT)  # members only: unfinished packages are excluded in pyproject.toml


def test_workspace_members_and_python():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(meta["tool"]["uv"]["workspace"]["members"]) == {"shared", "packages/*"}
    assert "3.11" in meta["project"]["requires-python"] or meta["project"]["requires-python"] == ">=3.11"
    assert (ROOT / "uv.lock").is_file(), "uv.lock must be committed"
    assert (ROOT / ".ci" / "run").is_file()


def test_there_are_packages():
    assert PACKAGES, "no paper packages found"


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_package_has_contract_files(pkg: Path):
    for name in ("pyproject.toml", "README.md", "reproduce.py"):
        assert (pkg / name).is_file(), f"packages/{pkg.name} lacks {name}"
    tests = list((pkg / "tests").glob("test_*.py"))
    assert tests, f"packages/{pkg.name}/tests has no test_*.py"
    module = pkg.name.replace("-", "_")
    assert (pkg / "src" / module / "__init__.py").is_file(), f"packages/{pkg.name} lacks src/{module}/"


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_package_depends_on_xentlab_through_the_workspace(pkg: Path):
    meta = tomllib.loads((pkg / "pyproject.toml").read_text())
    assert meta["project"]["name"] == pkg.name
    deps = [d.split(";")[0].strip() for d in meta["project"].get("dependencies", [])]
    assert any(d == "xentlab" or d.startswith(("xentlab>", "xentlab=", "xentlab[")) for d in deps), (
        f"{pkg.name} must depend on xentlab"
    )
    assert meta["tool"]["uv"]["sources"]["xentlab"] == {"workspace": True}


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_package_readme_sections(pkg: Path):
    text = (pkg / "README.md").read_text().lower()
    for needle in ("claim", "reproduce.py", "deviation"):
        assert needle in text, f"packages/{pkg.name}/README.md should cover {needle!r}"
    assert "arxiv" in text or "paper" in text


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_committed_cpu_results_are_valid(pkg: Path):
    path = pkg / "results" / "cpu" / "result.json"
    if not path.exists():
        pytest.fail(f"packages/{pkg.name} has no committed results/cpu/result.json")
    result = json.loads(path.read_text())
    validate_result(result)
    assert result["package"] == pkg.name and result["scale"] == "cpu"
    assert len(result["seeds"]) >= 2, "cpu scale runs several seeds"
    assert (pkg / "results" / "cpu" / "report.md").is_file()
    for fig in result.get("figures", []):
        assert (pkg / "results" / "cpu" / fig).is_file(), f"figure {fig} named in result.json is missing"


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_committed_cpu_units_match_the_current_experiments(pkg: Path):
    # The committed numbers must be what today's reproduce.py computes: every (experiment, seed)
    # unit of the cpu scale is there and its key (experiment, version, config, seed) is the one the
    # current code would resume, so a changed config or version cannot leave stale results behind.
    # An experiment's seeds are its own list at cpu scale (Experiment.seeds) or the run's seeds.
    result = json.loads((pkg / "results" / "cpu" / "result.json").read_text())
    units = pkg / "results" / "cpu" / "units"
    mod = load_reproduce(pkg / "reproduce.py")
    expected = {e.name: e for e in mod.EXPERIMENTS if e.config("cpu") is not None}
    on_disk = {d.name for d in units.iterdir() if d.is_dir()}
    assert on_disk <= set(expected), (
        f"units of experiments that no longer run at cpu scale: {on_disk - set(expected)}"
    )
    for name, exp in expected.items():
        seeds = exp.seeds_for("cpu", result["seeds"])
        if "experiment_seeds" in result:  # schema 2 records them; older results ran result["seeds"]
            assert result["experiment_seeds"].get(name) == seeds, (
                f"{pkg.name}: result.json says {name} ran seeds {result['experiment_seeds'].get(name)}, "
                f"today's reproduce.py runs {seeds}; rerun the cpu scale"
            )
        for seed in seeds:
            path = units / name / f"seed{seed}.json"
            assert path.is_file(), f"{pkg.name}: no committed unit {name}/seed{seed}"
            key = json.loads(path.read_text())["key"]
            assert key == unit_key(exp, exp.config("cpu"), seed, scale="cpu"), (
                f"{pkg.name}: {name}/seed{seed} was computed with another config or version; rerun the cpu scale"
            )


def test_readme_ledger_matches_committed_results():
    readme = (ROOT / "README.md").read_text()
    assert render_ledger(readme, ledger_table(ROOT)) == readme, (
        "README ledger is out of date: run `uv run xentlab ledger` and commit"
    )


def test_network_is_blocked():
    with pytest.raises(RuntimeError, match="offline"):
        socket.create_connection(("203.0.113.1", 80), timeout=1)


def test_excluded_packages_are_not_collected():
    """Unfinished packages stay in the tree but out of the workspace, the tests and the ledger."""
    for member in excluded_members(ROOT):
        assert not any(p == ROOT / member for p in PACKAGES)
