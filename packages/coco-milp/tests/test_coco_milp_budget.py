"""The budget rule (coco_milp.budget): (i)-(iii) on hand-made probe results, the committed cpu pilot
re-derived by the shared implementation, the probe stream kept apart from the data set, the selection's
cache key, and the --scale full path on a tiny fixture (selection runs, is cached, and is used)."""

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from coco_milp import budget, data, experiment, instances, solve
from coco_milp.budget import BudgetRule, first_qualifying, qualifies
from coco_milp.data import DataConfig

from xentlab.testing.cache_keys import assert_key_follows, upgrade_library
from xentlab.testing.reproduce_module import load_reproduce

PKG = Path(__file__).parents[1]
TINY = dict(n_rows=20, n_cols=40, density=0.1, n_train=3, n_val=1, n_test=2, label_time_limit=5.0,
            label_node_limit=50, pas_node_limit=1)  # fmt: skip


def _row(nodes=1, heur="default", nonzero=4, found=8, cpu=0.5):
    return dict(nodes=nodes, heuristics=heur, n_nonzero=nonzero, n_found=found, mean_cpu_s=cpu)


@pytest.mark.parametrize(
    "row, ok",
    [
        (_row(), True),  # every condition at its boundary: half nonzero, half found, cpu == cap
        (_row(nonzero=3), False),  # (i) the budget binds on fewer than half of the probes
        (_row(nonzero=8, found=3), False),  # (ii) no solution on more than half (all-or-nothing)
        (_row(cpu=0.5001), False),  # (iii) too expensive
        (_row(nonzero=8, found=8, cpu=0.01), True),
    ],
)
def test_rule_on_hand_made_probe_results(row, ok):
    assert qualifies(row, n_probes=8, max_mean_cpu_s=0.5) is ok


def test_first_qualifying_budget_in_ladder_order():
    rows = [_row(1, "default", nonzero=0), _row(30, "off", nonzero=5), _row(10, "off", nonzero=8)]
    assert first_qualifying(rows, 8, 0.5) == dict(nodes=30, heuristics="off")
    assert first_qualifying(rows[:1], 8, 0.5) is None
    assert first_qualifying(rows, 8, 0.1) is None  # none affordable


def _script():
    spec = importlib.util.spec_from_file_location("coco_select_budget", PKG / "scripts" / "select_budget.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shared_rule_reproduces_the_committed_cpu_selection():
    """The pilot's recorded ladders give the same verdicts under the moved rule: stage 2 picked nothing
    (cap 0.5 CPU-s), stage 3 (cap 1.5) picks 300 x 300 at 1 node, default SCIP (the cpu budget)."""
    script = _script()
    sel = json.loads((PKG / "results" / "budget_selection.json").read_text())
    for size in sel["sizes"]:
        for row in size["ladder"]:
            assert qualifies(row, script.N_PROBES, script.MAX_MEAN_CPU_S) == row["qualifies"]
    assert sel["chosen"] is None
    assert script.stage3_choice(sel) == sel["stage3"]["chosen"] == dict(n_rows=300, n_cols=300, nodes=1,
                                                                         heuristics="default")  # fmt: skip
    stage1 = json.loads((PKG / "results" / "budget_selection_stage1.json").read_text())
    assert first_qualifying(stage1["ladder"], 8, 0.3) is None is stage1["chosen"]


def test_probes_are_not_data_set_instances():
    dcfg = DataConfig(**TINY)
    with pytest.raises(ValueError, match="data_seed"):
        budget.select_budget(dcfg, BudgetRule(ladder=[(1, "default")], max_mean_cpu_s=1.0, probe_seed=0))
    own = budget.probe_instances(20, 40, 0.1, 3, probe_seed=1)
    budget.check_disjoint(own, dcfg)  # another stream: no overlap
    same = budget.probe_instances(20, 40, 0.1, 3, probe_seed=dcfg.data_seed)
    with pytest.raises(ValueError, match="instance of the data set"):
        budget.check_disjoint(same, dcfg)


def test_bad_rule_raises():
    with pytest.raises(ValueError, match="ladder"):
        BudgetRule(ladder=[(1, "aggressive")], max_mean_cpu_s=1.0)
    with pytest.raises(ValueError, match="empty"):
        BudgetRule(ladder=[], max_mean_cpu_s=1.0)
    cfg = experiment.RunConfig(
        data=TINY, budget_nodes=1, budget_select=dict(ladder=[[1, "off"]], max_mean_cpu_s=1)
    )
    with pytest.raises(ValueError, match="not both"):
        experiment.choose_budget(cfg)


@pytest.fixture
def _real_code_keys(monkeypatch):
    yield
    monkeypatch.undo()
    data.code_version.cache_clear()


RULE = BudgetRule(ladder=[(1, "default")], max_mean_cpu_s=1.0)


def _sel_key(rule=RULE):
    return budget.selection_key(DataConfig(**TINY), rule)


@pytest.mark.parametrize("module", [budget, instances, solve], ids=lambda m: m.__name__)
def test_selection_key_follows_the_code(module, monkeypatch, _real_code_keys):
    before = _sel_key()
    assert _sel_key(BudgetRule(ladder=[(1, "default")], max_mean_cpu_s=2.0)) != before  # the rule counts
    assert (
        budget.selection_key(DataConfig(**{**TINY, "n_rows": 21}), BudgetRule([(1, "default")], 1.0))
        != before
    )
    assert_key_follows(_sel_key, monkeypatch, module)
    upgrade_library(monkeypatch, "pyscipopt")
    assert _sel_key() != before
    monkeypatch.undo()
    monkeypatch.setattr(data, "scip_version", lambda: "0.0.0")
    assert _sel_key() != before


def _full_run(tmp_path, name, rule):
    """reproduce.py --scale full, in-process, with the full config shrunk to the tiny fixture."""
    mod = load_reproduce(PKG / "reproduce.py")
    tiny_full = dict(data=TINY, epochs=1, budget_select=rule)
    exps = [
        replace(e, configs={**e.configs, "full": {**tiny_full, **mod.ARMS[e.name]}}) for e in mod.EXPERIMENTS
    ]
    argv = ["--scale", "full", "--seeds", "0", "--out", str(tmp_path / name), "--quiet"]
    return mod.run_cli(mod.PAPER, exps, mod.CLAIMS, derived=mod.DERIVED, figures=mod.figures, argv=argv,
                       default_workers=1, package_dir=PKG)  # fmt: skip


def test_full_scale_selects_caches_and_uses_the_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    # Tiny instances are solved at the root under any budget, so a patched ladder stands in for a binding
    # budget: with heuristics off, plain SCIP's objective is made 5% worse (a nonzero gap on every probe).
    real_plain, solves, pas_budgets = budget.solve_plain, [], []

    def plain(inst, nodes, heuristics="default"):
        solves.append((nodes, heuristics))
        r = real_plain(inst, nodes, heuristics)
        return replace(r, obj=r.obj * 1.05) if heuristics == "off" else r

    real_pas = experiment.solve_pas

    def pas(inst, scores, k0, k1, delta, node_limit, heuristics="default"):
        pas_budgets.append((node_limit, heuristics))
        return real_pas(inst, scores, k0, k1, delta, node_limit, heuristics)

    monkeypatch.setattr(budget, "solve_plain", plain)
    monkeypatch.setattr(experiment, "solve_pas", pas)
    rule = dict(
        ladder=[[1, "default"], [2, "off"], [1, "off"]], max_mean_cpu_s=60.0, n_probes=2, probe_seed=1
    )
    result = _full_run(tmp_path, "a", rule)
    # the selection ran once, in ladder order, and stopped at the first qualifying rung; then the test
    # split's plain solves ran once under the chosen budget (cached for the other units)
    assert solves == [(1, "default")] * 2 + [(2, "off")] * 2 + [(2, "off")] * TINY["n_test"]
    assert len(list((tmp_path / "cache" / "coco_milp").glob("budget-*.json"))) == 1
    # it was used: every PaS solve of the 3 units ran under it, and the output says so
    assert pas_budgets == [(2, "off")] * (3 * TINY["n_test"])
    for arm in ("ps", "vcl", "coco"):
        assert result["metrics"][f"{arm}/budget_nodes"]["mean"] == 2
        assert result["metrics"][f"{arm}/budget_heuristics_off"]["mean"] == 1.0
        assert result["config"][arm]["budget_select"] == rule
    units = {a: json.loads((tmp_path / "a" / "units" / a / "seed0.json").read_text()) for a in ("ps", "coco")}
    assert units["ps"]["artifacts"]["budget_selection"]["cached"] is False  # the first unit measured it
    assert units["coco"]["artifacts"]["budget_selection"]["cached"] is True
    assert units["coco"]["artifacts"]["budget_selection"]["chosen"] == dict(nodes=2, heuristics="off")
    assert result["metrics"]["ps/plain_gap"]["mean"] == pytest.approx(100 * 0.05 / 1.0, rel=0.2)
    claims = {c["id"]: c for c in result["claims"]}
    assert claims["pas-ps-le-plain"]["value"] is not None  # judged
    # a later run reads the cached selection and plain objectives: no plain solve at all
    solves.clear()
    dcfg = DataConfig(**TINY)
    again = budget.cached_selection(dcfg, BudgetRule(**rule))
    assert again["cached"] and again["chosen"] == dict(nodes=2, heuristics="off")
    test = data.load_dataset(dcfg)["test"]
    assert len(budget.plain_objectives(dcfg, [it.inst for it in test], 2, "off")) == TINY["n_test"]
    assert solves == []


def test_full_scale_without_a_qualifying_budget_does_not_judge_pas(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    ran_pas = []
    monkeypatch.setattr(experiment, "solve_pas", lambda *a, **k: ran_pas.append(a))
    # real SCIP: the tiny probes are solved to optimality at 1 node, so (i) fails
    rule = dict(ladder=[[1, "default"]], max_mean_cpu_s=60.0, n_probes=2, probe_seed=1)
    result = _full_run(tmp_path, "none", rule)
    assert ran_pas == []
    assert "no budget of the ladder qualified" in capsys.readouterr().err
    assert result["metrics"]["ps/budget_qualified"]["mean"] == 0.0
    assert "ps/pas_gap" not in result["metrics"]
    claims = {c["id"]: c for c in result["claims"]}
    for cid in ("pas-coco-le-pas-ps", "pas-ps-le-plain"):
        assert claims[cid]["value"] is None and claims[cid]["reason"] == "metric not measured at this scale"
        assert "no budget qualifies" in claims[cid]["note"]
    assert claims["coco-auc-ps-plus-1"]["value"] is not None  # the prediction claims are still judged
    assert np.isfinite(result["metrics"]["coco/auc"]["mean"])


def test_cpu_and_smoke_configs_do_not_select():
    """The cpu scale keeps its fixed budget (its committed units keep their keys) and smoke its own."""
    mod = load_reproduce(PKG / "reproduce.py")
    for e in mod.EXPERIMENTS:
        assert "budget_select" not in e.config("cpu") and "budget_select" not in e.config("smoke")
        assert e.config("cpu")["budget_nodes"] == 1 and e.config("full")["budget_select"]["n_probes"] == 8


def test_stage1_settings_are_the_ones_that_ran():
    """``--stage 1`` reproduces stage 1 as it ran (results/budget_selection_stage1.json): the first
    protocol's cpu size and labelling (2 s wall clock, no node limit), the 0.3 CPU-s cap, no size rule (iv),
    the same probes and ladder; its rule text is the recorded one."""
    script = _script()
    stage1 = json.loads((PKG / "results" / "budget_selection_stage1.json").read_text())
    s1 = script.STAGE1
    assert (s1["n_rows"], s1["n_cols"], s1["density"]) == (150, 300, 0.05)
    assert (s1["label_time_limit"], s1["label_node_limit"], s1["max_mean_cpu_s"]) == (2.0, None, 0.3)
    assert script.STAGE1_RULE == stage1["rule"]
    assert (script.N_PROBES, script.PROBE_SEED) == (stage1["n_probes"], stage1["probe_seed"])
    assert [(r["nodes"], r["heuristics"]) for r in stage1["ladder"]] == script.LADDER
    # the first data set was labelled with these settings (DataConfig's first-protocol defaults)
    assert (DataConfig().label_time_limit, DataConfig().label_node_limit) == (2.0, None)


def test_stage1_writes_the_record_it_wrote_then(tmp_path, monkeypatch):
    """On a tiny size, ``--stage 1`` writes a record of the committed stage 1 record's shape, to --out."""
    script = _script()
    monkeypatch.setattr(script, "STAGE1", {**script.STAGE1, "n_rows": 20, "n_cols": 40, "density": 0.1,
                                           "label_time_limit": 5.0})  # fmt: skip
    monkeypatch.setattr(script, "N_PROBES", 2)
    monkeypatch.setattr(script, "LADDER", [(1, "default")])
    out = tmp_path / "stage1.json"
    script.cli(["--stage", "1", "--out", str(out)])
    rec = json.loads(out.read_text())
    stage1 = json.loads((PKG / "results" / "budget_selection_stage1.json").read_text())
    assert list(rec) == list(stage1) and rec["rule"] == stage1["rule"]
    assert list(rec["ladder"][0]) == list(stage1["ladder"][0]) and len(rec["probe_best_obj"]) == 2
    assert rec["chosen"] is None  # tiny probes are solved at the root: (i) fails, as at 150 x 300


def test_the_stage_options():
    script = _script()
    assert script.parse_args([]).stage == 2 and script.parse_args(["--stage3"]).stage == 3
    assert script.parse_args(["--stage", "1"]).stage == 1
    with pytest.raises(SystemExit):
        script.parse_args(["--stage", "4"])
