"""Each computed unit records where (git commit) and how heavily (peak RSS) it was computed, and
result.json / report.md aggregate that over the units the report uses, so that a re-rendered run
no longer passes the rendering session's commit and memory off as the computation's."""

import json
import subprocess
import sys

import pytest
import torch

from xentlab.repro import Claim, Experiment, Paper, run_cli
from xentlab.repro.environment import cpu_model
from xentlab.repro.report import render_report
from xentlab.repro.units import provenance_summary, unit_key
from xentlab.testing.smoke import validate_result

PAPER = Paper(title="Toy", package="toy", arxiv="0000.00000")
CALLS: list[tuple[str, int]] = []
PROVENANCE_FIELDS = ("peak_rss_mb", "peak_children_rss_mb", "peak_cuda_mb", "git", "host")


def fit(cfg, seed, ctx):
    CALLS.append((ctx.experiment, seed))
    w = torch.randn(3) * cfg["scale"]
    if cfg.get("spawn"):  # a unit that runs a child process (a tool, a compiler, a data loader worker)
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    return {"score": float(w.abs().mean())}


EXPS = [
    Experiment("a", fit, {"smoke": {"scale": 1.0}}),
    Experiment("b", fit, {"smoke": {"scale": 0.1}}),
]
CLAIMS = [Claim("pos", "score is positive", "a/score", "> 0")]


def git(root, *args) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    return subprocess.run([*cmd, *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git checkout holding a toy package (its results are untracked, as before a commit)."""
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "code.py").write_text("x = 1\n")
    git(root, "add", "code.py")
    git(root, "commit", "-q", "-m", "one")
    return root


def run(root, *seeds, exps=EXPS):
    CALLS.clear()
    out = root / "results" / "smoke"
    args = ["--out", str(out), "--quiet", "--scale", "smoke", "--seeds", *map(str, seeds)]
    return run_cli(PAPER, exps, CLAIMS, argv=args, package_dir=root)


def unit_file(root, exp, seed):
    return root / "results" / "smoke" / "units" / exp / f"seed{seed}.json"


def test_a_new_unit_records_its_peak_rss_and_the_commit_it_was_computed_at(repo):
    run(repo, 0)
    head = git(repo, "rev-parse", "HEAD")
    unit = json.loads(unit_file(repo, "a", 0).read_text())
    assert unit["peak_rss_mb"] > 0  # this process's ru_maxrss: an upper bound for the unit
    assert unit["git"] == {"commit": head, "dirty": False}  # untracked results do not make it dirty
    assert "peak_children_rss_mb" not in unit  # the unit started no process
    assert "peak_cuda_mb" not in unit  # a cpu unit
    # the machine: bf16 CPU kernels dispatch on the ISA, so the same code and seed can differ across hosts
    assert unit["host"] == {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                            "torch": torch.__version__}  # fmt: skip
    # the provenance is no part of the resume key: a unit's key is what it always was
    assert unit["key"] == unit_key(EXPS[0], {"scale": 1.0}, 0, scale="smoke")


def test_a_dirty_checkout_is_recorded_and_a_unit_that_spawns_a_process_reports_its_children(repo):
    (repo / "code.py").write_text("x = 2\n")  # an uncommitted edit to a tracked file
    exps = [Experiment("a", fit, {"smoke": {"scale": 1.0, "spawn": True}})]
    run(repo, 0, exps=exps)
    unit = json.loads(unit_file(repo, "a", 0).read_text())
    assert unit["git"] == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": True}
    assert unit["peak_children_rss_mb"] > 0


def test_outside_a_git_checkout_the_unit_records_git_null(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above tmp_path counts
    root = tmp_path / "plain"
    root.mkdir()
    result = run(root, 0)
    unit = json.loads(unit_file(root, "a", 0).read_text())
    assert unit["git"] is None and unit["peak_rss_mb"] > 0
    assert result["computation"]["git"] == [{"commit": None, "dirty": None, "units": 2}]


def strip_provenance(path):
    """Rewrite a unit file as the runner wrote it before provenance was recorded."""
    unit = json.loads(path.read_text())
    for name in PROVENANCE_FIELDS:
        unit.pop(name, None)
    path.write_text(json.dumps(unit, indent=2) + "\n")
    return path.read_bytes()


def test_mixed_old_and_new_units_resume_and_aggregate_into_the_computation_section(repo):
    run(repo, 0)  # seed 0 at commit A, clean
    commit_a = git(repo, "rev-parse", "HEAD")
    (repo / "code.py").write_text("x = 2\n")
    git(repo, "commit", "-q", "-am", "two")
    commit_b = git(repo, "rev-parse", "HEAD")
    (repo / "code.py").write_text("x = 3\n")  # uncommitted: seed 1 is computed on a dirty B
    run(repo, 0, 1)
    assert sorted(CALLS) == [("a", 1), ("b", 1)]  # seed 0 resumed

    old_bytes = strip_provenance(unit_file(repo, "b", 0))  # an old-format unit file (no provenance)
    result = run(repo, 0, 1)
    assert CALLS == [] and result["units"] == {"computed": 0, "reused": 4}  # the old-format unit resumed
    assert unit_file(repo, "b", 0).read_bytes() == old_bytes  # and existing unit files are not rewritten

    units = [json.loads(unit_file(repo, e, s).read_text()) for e in "ab" for s in (0, 1)]
    comp = result["computation"]
    assert comp["units"] == 4 and comp["with_provenance"] == 3 and comp["without_provenance"] == 1
    assert comp["git"] == [
        {"commit": commit_b, "dirty": True, "units": 2},
        {"commit": commit_a, "dirty": False, "units": 1},
    ]
    assert comp["peak_rss_mb"] == max(u["peak_rss_mb"] for u in units if "peak_rss_mb" in u)
    assert comp["peak_children_rss_mb"] is None and comp["peak_cuda_mb"] is None
    stamps = sorted(u["finished_at"] for u in units)  # one time zone, so text order is time order
    assert comp["finished_at"] == {"first": stamps[0], "last": stamps[-1]}
    on_disk = json.loads((repo / "results" / "smoke" / "result.json").read_text())
    assert on_disk["computation"] == comp
    validate_result(on_disk)
    # the session's own fields stay, and keep describing the session (a dirty checkout at B)
    assert on_disk["environment"]["git"] == {"commit": commit_b, "dirty": True}
    assert on_disk["peak_memory_mb"]["rss_mb"] > 0

    report = (repo / "results" / "smoke" / "report.md").read_text()
    line = next(x for x in report.splitlines() if x.startswith("Computed at git"))
    assert f"`{commit_b[:12]}` (dirty) for 2 units and `{commit_a[:12]}` for 1 unit" in line
    assert "(4 units; 1 unit predates provenance records)" in line
    assert f"peak RSS of the computing processes <= {comp['peak_rss_mb']} MB" in line
    assert f"This session (it rendered this report): git {commit_b[:12]} (dirty)" in report


def test_provenance_summary_of_units_that_all_predate_it():
    old = [{"finished_at": "2026-11-28T10:00:00+0000"}, {"finished_at": "2026-11-29T09:00:00+0000"}]
    comp = provenance_summary(old)
    assert comp == {
        "units": 2,
        "with_provenance": 0,
        "without_provenance": 2,
        "git": [],
        "peak_rss_mb": None,
        "peak_children_rss_mb": None,
        "peak_cuda_mb": None,
        "finished_at": {"first": "2026-11-28T10:00:00+0000", "last": "2026-11-29T09:00:00+0000"},
    }
    # times in other zones are ordered as times, not as text
    zones = [{"finished_at": "2026-11-29T10:00:00+0200"}, {"finished_at": "2026-11-29T09:00:00+0000"}]
    assert provenance_summary(zones)["finished_at"] == {
        "first": "2026-11-29T10:00:00+0200",
        "last": "2026-11-29T09:00:00+0000",
    }


def test_a_result_without_a_computation_section_still_renders(repo):
    result = run(repo, 0)
    comp_line = next(x for x in render_report(result, []).splitlines() if x.startswith("Computed at git"))
    assert "(2 units)" in comp_line and "predate" not in comp_line
    old = {k: v for k, v in result.items() if k != "computation"}  # a result.json from before
    report = render_report(old, [])
    assert "Computed at" not in report and "This session" in report
    validate_result(old)

    all_old = dict(result, computation=provenance_summary([{"finished_at": "2026-11-28T10:00:00+0000"}]))
    line = next(x for x in render_report(all_old, []).splitlines() if x.startswith("Computed at"))
    assert "1 unit, which predates provenance records" in line


def test_cpu_model_reads_the_first_model_name_of_cpuinfo_and_falls_back(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: X\nmodel name\t: Example CPU 9000 @ 3.0GHz\n\n"
                    "processor\t: 1\nmodel name\t: Other\n")  # fmt: skip
    assert cpu_model(info) == "Example CPU 9000 @ 3.0GHz"
    missing = cpu_model(tmp_path / "absent")  # not Linux: platform.processor(), else "cpu"
    assert isinstance(missing, str) and missing
    info.write_text("processor\t: 0\nmodel name\t:   \n")  # an empty name is no name
    assert cpu_model.__wrapped__(info) == missing
