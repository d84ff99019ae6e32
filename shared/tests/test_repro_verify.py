"""xentlab verify: recompute committed cpu units in fresh processes and compare their metrics."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
import torch

from xentlab.cli import main
from xentlab.repro.runner import run_experiments
from xentlab.repro.verify import (
    TIMING_METRICS,
    Diff,
    UnitCheck,
    VerifyError,
    _child_env,
    changed_files,
    code_fingerprint,
    compare_metrics,
    compare_value,
    plan_units,
    verify_package,
)
from xentlab.testing import load_reproduce

# A toy package in the shape of templates/package: two experiments whose metrics depend on the
# seed (through the runner's seeding) and on a module constant, so that editing the code without
# bumping Experiment.version changes what a unit computes while its resume key stays the same.
TOY_REPRODUCE = """
import random

from xentlab.repro import Claim, Experiment, Paper, RunContext, run_cli

PAPER = Paper(title="Toy", package="toy-pkg")
OFFSET = 0.0


def draw(cfg: dict, seed: int, ctx: RunContext) -> dict:
    xs = [random.random() for _ in range(cfg["n"])]
    return {"mean": sum(xs) / len(xs) + OFFSET, "n": cfg["n"], "big": max(xs) > 0.5, "curve": xs[:3]}


def other(cfg: dict, seed: int, ctx: RunContext) -> dict:
    return {"value": random.gauss(0.0, 1.0) * cfg["scale"] + OFFSET}


EXPERIMENTS = [
    Experiment("a", draw, {"smoke": {"n": 5}, "cpu": {"n": 50}}),
    Experiment("b", other, {"smoke": {"scale": 1.0}, "cpu": {"scale": 2.0}}),
]
CLAIMS = [Claim(id="c", statement="s", metric="a/mean", check="> 0")]

if __name__ == "__main__":
    run_cli(PAPER, EXPERIMENTS, CLAIMS)
"""


@pytest.fixture
def toy_workspace(tmp_path, monkeypatch):
    """A workspace with one package whose cpu units (seeds 0, 1) are committed."""
    (tmp_path / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["shared", "packages/*"]\n')
    pkg = tmp_path / "packages" / "toy-pkg"
    pkg.mkdir(parents=True)
    (pkg / "pyproject.toml").write_text('[project]\nname = "toy-pkg"\n')
    (pkg / "reproduce.py").write_text(TOY_REPRODUCE)
    mod = load_reproduce(pkg / "reproduce.py")
    run_experiments(
        mod.EXPERIMENTS,
        scale="cpu",
        seeds=[0, 1],
        out_dir=pkg / "results" / "cpu",
        device=torch.device("cpu"),
        show_progress=False,
        echo=lambda _: None,
    )
    monkeypatch.chdir(tmp_path)
    return pkg


def _unit(pkg: Path, exp: str, seed: int) -> Path:
    return pkg / "results" / "cpu" / "units" / exp / f"seed{seed}.json"


def test_verify_recomputes_equal_then_reports_an_edited_metric_and_an_unversioned_code_edit(
    toy_workspace, capsys
):
    pkg = toy_workspace
    report = pkg.parent.parent / "verify.json"
    # where a stored unit was computed is shown beside its comparison (a unit file from before
    # provenance records has none: b's units here)
    stored_git = {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True}
    for path in pkg.glob("results/cpu/units/a/seed*.json"):
        path.write_text(json.dumps(dict(json.loads(path.read_text()), git=stored_git)))
    for path in pkg.glob("results/cpu/units/b/seed*.json"):
        unit = json.loads(path.read_text())
        del unit["git"], unit["peak_rss_mb"]
        path.write_text(json.dumps(unit))
    # 1. untouched: each experiment's cheapest unit recomputes to the same numbers
    assert main(["verify", "toy-pkg", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "2/2 equal" in out and "stored cpu_s" in out
    assert out.count("stored unit computed at git 0123456789ab (dirty)") == 1  # a's line, not b's
    summary = json.loads(report.read_text())[0]
    assert summary["ok"] and summary["checked"] == 2 and summary["mismatching"] == 0
    assert all(u["stored_key"] == u["current_key"] for u in summary["units"])
    assert {u["experiment"]: u["stored_git"] for u in summary["units"]} == {"a": stored_git, "b": None}

    # 2. a stored metric edited by hand, and b's code changed without a version bump
    path = _unit(pkg, "a", 0)
    unit = json.loads(path.read_text())
    stored_mean = unit["metrics"]["mean"]
    unit["metrics"]["mean"] = stored_mean + 1e-3
    path.write_text(json.dumps(unit))
    src = pkg / "reproduce.py"
    src.write_text(src.read_text().replace('* cfg["scale"] + OFFSET', '* cfg["scale"] + OFFSET + 0.25'))
    assert main(["verify", "toy-pkg", "--seeds", "0", "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "0/2 equal, 2 mismatching" in out
    by_exp = {u["experiment"]: u for u in json.loads(report.read_text())[0]["units"]}
    (diff_a,) = by_exp["a"]["diffs"]
    assert diff_a["metric"] == "mean" and diff_a["current"] == pytest.approx(stored_mean, abs=1e-12)
    assert diff_a["abs_diff"] == pytest.approx(1e-3, rel=1e-6)
    (diff_b,) = by_exp["b"]["diffs"]
    assert diff_b["metric"] == "value" and diff_b["abs_diff"] == pytest.approx(0.25, rel=1e-9)
    # the key cannot see a code edit: this is exactly what the resume cache would have kept
    assert by_exp["b"]["stored_key"] == by_exp["b"]["current_key"]


def test_plan_picks_each_experiments_cheapest_unit_and_says_what_it_skips(tmp_path):
    units = tmp_path / "units"
    costs = {"fast": {0: 3.0, 1: 2.0, 2: 2.0}, "slow": {0: 500.0, 1: 400.0}, "old": {0: None}}
    for exp, by_seed in costs.items():
        (units / exp).mkdir(parents=True)
        for seed, cpu in by_seed.items():
            unit = {"metrics": {"x": 1.0}, "key": "k", "wall_s": 7.0}
            if cpu is not None:
                unit["cpu_s"] = cpu
            (units / exp / f"seed{seed}.json").write_text(json.dumps(unit))
            (units / exp / f"seed{seed}.log.jsonl").write_text("")  # not a unit file
    planned, skipped = plan_units(units, max_unit_cpu_s=120)
    # fast: the tie at 2.0 s goes to the lower seed; old predates cpu_s and is costed by wall_s
    assert [(p.experiment, p.seed, p.cost_s) for p in planned] == [("fast", 1, 2.0), ("old", 0, 7.0)]
    ((exp, seed, reason),) = [(s.experiment, s.seed, s.reason) for s in skipped]
    assert (exp, seed) == ("slow", 1) and "400.0 > --max-unit-cpu-s 120" in reason

    planned, skipped = plan_units(units, seeds=[0, 2], max_unit_cpu_s=None, experiments=["fast", "slow"])
    assert [(p.experiment, p.seed) for p in planned] == [("fast", 0), ("fast", 2), ("slow", 0)]
    assert [(s.experiment, s.seed, s.reason) for s in skipped] == [
        ("slow", 2, "no committed unit of this seed")
    ]

    planned, skipped = plan_units(units, max_unit_cpu_s=None, max_units=1)
    assert [(p.experiment, p.seed) for p in planned] == [("fast", 1)]
    assert {s.experiment for s in skipped} == {"old", "slow"}

    with pytest.raises(VerifyError, match="nope"):
        plan_units(units, experiments=["nope"])
    with pytest.raises(VerifyError, match="no committed units"):
        plan_units(tmp_path / "missing")


def test_compare_is_exact_for_ints_bools_strings_and_tolerant_only_within_rtol_atol_for_floats():
    assert compare_value("i", 3, 3) is None
    assert compare_value("i", 3, 4).abs_diff == 1.0
    assert compare_value("b", True, True) is None
    assert compare_value("b", True, 1) is not None  # a bool is not the number 1
    assert compare_value("s", "x", "y") is not None
    assert compare_value("n", None, None) is None  # a NaN stored as null, recomputed as null
    assert compare_value("n", None, 0.0) is not None
    assert compare_value("f", 1.0, 1.0 + 5e-7) is None  # within rtol 1e-6
    d = compare_value("f", 1.0, 1.0 + 2e-6)
    assert d is not None and d.rel_diff == pytest.approx(2e-6)
    assert compare_value("f", 0.0, 5e-10) is None  # within atol 1e-9
    assert compare_value("f", 0.0, 2e-9).rel_diff == math.inf
    assert compare_value("f", 1.0, 1.1, rtol=0.2) is None
    assert compare_value("i", 2, 2.0) is None  # an int metric that is now a float of the same value

    diffs = compare_metrics({"a": 1.0, "b": 2.0, "gone": 1}, {"a": 1.5, "b": 2.0 + 1e-3, "new": 0})
    assert [d.metric for d in diffs] == ["gone", "new", "a", "b"]  # missing/new first, then by rel diff
    assert "not produced any more" in diffs[0].describe()


def test_timings_are_not_compared_by_default_and_nothing_else_is_mistaken_for_one():
    # names of timing metrics committed in the workspace's packages
    timings = ["cpu_s_sce", "cpu_s_per_epoch_ce", "train_s", "eval_s", "finetune_time_s", "pretrain_cpu_s"]
    timings += ["teacher_train_cpu_s", "time_data_s", "time_s", "train_seconds", "wall_s_unit", "sps"]
    timings += ["sps_ratio", "s_per_step_cce", "official_cpu_fw_ms_v8192", "ours_time_over_naive"]
    # and names that only look alike
    others = ["tokens_per_step", "rl_sec_strict", "peak_pass@1", "cos_synonyms", "n_params", "timestep_acc"]
    others += ["official_cpu_grad_err_v8192", "naive_fw_mem_growth", "ms_ssim", "msmarco_acc"]
    assert [n for n in timings if not re.search(TIMING_METRICS, n)] == []
    assert [n for n in others if re.search(TIMING_METRICS, n)] == []
    stored = {"acc": 0.5, "train_s": 10.0}
    assert compare_metrics(stored, {"acc": 0.5, "train_s": 12.0}, ignore=TIMING_METRICS) == []
    assert [d.metric for d in compare_metrics(stored, {"acc": 0.5, "train_s": 12.0})] == ["train_s"]


def test_a_unit_check_with_another_key_is_a_mismatch_even_when_the_numbers_agree():
    check = UnitCheck("a", 0, 1.0, stored_key="old", current_key="new")
    assert not check.ok and check.status == "mismatch"
    check.current_key = "old"
    assert check.ok
    check.diffs = [Diff("x", 1.0, 2.0, 1.0, 1.0)]
    assert check.status == "mismatch"
    check.error = "exit 1"
    assert check.status == "error"


def test_the_child_runs_one_blas_thread_and_a_cold_cache_is_its_own(tmp_path):
    env = _child_env()
    assert env["OMP_NUM_THREADS"] == "1" and env["MKL_NUM_THREADS"] == "1"
    assert env.get("XENTLAB_CACHE") == os.environ.get("XENTLAB_CACHE")
    assert _child_env(tmp_path / "c")["XENTLAB_CACHE"] == str(tmp_path / "c")


def test_a_package_with_every_unit_skipped_says_nothing_was_verified(toy_workspace, capsys):
    # exit 0 (nothing differed), but the output must not read like a pass
    for path in toy_workspace.glob("results/cpu/units/*/seed*.json"):
        unit = json.loads(path.read_text())
        unit["cpu_s"] = 5.0  # the toy's units cost ~0 s: make them look dearer than the limit
        path.write_text(json.dumps(unit))
    assert main(["verify", "toy-pkg", "--max-unit-cpu-s", "1"]) == 0
    out = capsys.readouterr().out
    assert "0 unit(s) to recompute" in out and "NOTHING VERIFIED" in out


def test_verify_rejects_bad_arguments(toy_workspace, capsys):
    assert main(["verify", "no-such-package"]) == 2
    assert main(["verify", "toy-pkg", "--max-units", "0"]) == 2
    assert main(["verify", "toy-pkg", "--experiments", "zzz"]) == 2
    assert main(["verify", "toy-pkg", "--ignore", "(unclosed"]) == 2
    assert "zzz" in capsys.readouterr().err


def test_a_code_edit_during_the_run_makes_it_inconclusive_even_when_every_unit_agrees(toy_workspace, capsys):
    # an edit that changes nothing computed (a comment), made after unit 1 and before unit 2: both units
    # recompute equal, yet they ran different code, so the run must not pass as verified
    pkg = toy_workspace
    src = pkg / "reproduce.py"
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if line.strip().startswith("[2/2]"):
            src.write_text(src.read_text() + "# edited while verify runs\n")

    summary = verify_package(pkg, echo=echo)
    assert summary["checked"] == summary["equal"] == 2 and summary["mismatching"] == 0
    assert not summary["ok"] and summary["code_changed"] == [str(src.resolve())]
    out = "\n".join(lines)
    assert "CODE CHANGED while verifying (noticed after unit 2)" in out and "INCONCLUSIVE" in out
    # and the CLI says so with its failure status; an unchanged tree passes again
    capsys.readouterr()
    assert main(["verify", "toy-pkg"]) == 0
    assert "INCONCLUSIVE" not in capsys.readouterr().out


def test_code_fingerprint_covers_package_code_and_xentlab_but_not_results(tmp_path):
    import xentlab

    pkg = tmp_path / "pkg"
    (pkg / "src" / "p").mkdir(parents=True)
    (pkg / "results" / "cpu").mkdir(parents=True)
    (pkg / "src" / "p" / "m.py").write_text("A = 1\n")
    (pkg / "reproduce.py").write_text("")
    (pkg / "results" / "cpu" / "stray.py").write_text("")
    (pkg / "tests").mkdir()
    (pkg / "tests" / "test_p.py").write_text("")  # no unit imports a test: editing one is not a code change
    (pkg / "README.md").write_text("not code")
    before = code_fingerprint(pkg)
    ours = {
        Path(p).relative_to(pkg.resolve()).as_posix() for p in before if Path(p).is_relative_to(pkg.resolve())
    }
    assert ours == {"reproduce.py", "src/p/m.py"}
    assert str(Path(xentlab.repro.verify.__file__).resolve()) in before
    (pkg / "src" / "p" / "m.py").write_text("A = 2\n")
    (pkg / "results" / "cpu" / "stray.py").write_text("B = 1\n")
    (pkg / "tests" / "test_p.py").write_text("def test_x():\n    pass\n")
    (pkg / "src" / "p" / "new.py").write_text("")
    after = code_fingerprint(pkg)
    assert changed_files(before, after) == sorted(
        [str(pkg.resolve() / "src/p/m.py"), str(pkg.resolve() / "src/p/new.py")]
    )
    assert changed_files(after, after) == []


def test_a_mismatch_says_when_the_stored_unit_came_from_another_host(toy_workspace, capsys):
    pkg = toy_workspace
    path = _unit(pkg, "a", 0)
    unit = json.loads(path.read_text())
    assert set(unit["host"]) == {"cpu", "cpu_capability", "torch"}  # recorded by the runner
    # equal units say nothing about hosts, even when the stored host differs
    unit["host"] = {"cpu": "Example CPU 9000", "cpu_capability": "AVX2", "torch": "0.0"}
    path.write_text(json.dumps(unit))
    assert main(["verify", "toy-pkg", "--experiments", "a", "--seeds", "0"]) == 0
    assert "HOST" not in capsys.readouterr().out
    # a mismatch names both machines
    unit["metrics"]["mean"] += 1e-3
    path.write_text(json.dumps(unit))
    assert main(["verify", "toy-pkg", "--experiments", "a", "--seeds", "0"]) == 1
    out = capsys.readouterr().out
    assert (
        "OTHER HOST: stored on Example CPU 9000, torch CPU capability AVX2, torch 0.0; recomputed on " in out
    )
    # a stored unit from before host records says so; the same host says nothing
    del unit["host"]
    path.write_text(json.dumps(unit))
    assert main(["verify", "toy-pkg", "--experiments", "a", "--seeds", "0"]) == 1
    assert "records no host" in capsys.readouterr().out
    unit["host"] = json.loads(_unit(pkg, "a", 1).read_text())["host"]  # this machine's record
    path.write_text(json.dumps(unit))
    assert main(["verify", "toy-pkg", "--experiments", "a", "--seeds", "0"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "HOST" not in out and "records no host" not in out
