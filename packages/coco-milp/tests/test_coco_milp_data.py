"""Generator invariants, graph encoding, SCIP predict-and-search, gaps, errors, and the smoke run."""

from pathlib import Path

import numpy as np
import pytest
from coco_milp.data import DataConfig, load_dataset
from coco_milp.experiment import RunConfig, primal_gap, run, train
from coco_milp.graph import encode
from coco_milp.instances import generate_set_cover
from coco_milp.solve import label_instance, solve_pas, solve_plain

from xentlab.testing import run_smoke


def test_generator_invariants_and_determinism():
    inst = generate_set_cover(30, 60, 0.1, np.random.default_rng(1))
    assert inst.A.shape == (30, 60)
    assert inst.A.sum() == int(30 * 60 * 0.1)  # every nonzero lands in a distinct cell
    assert (inst.A.sum(0) >= 2).all() and (inst.A.sum(1) >= 1).all()
    assert inst.c.min() >= 1 and inst.c.max() <= 100
    again = generate_set_cover(30, 60, 0.1, np.random.default_rng(1))
    assert (again.A == inst.A).all() and (again.c == inst.c).all()
    with pytest.raises(ValueError, match="density"):
        generate_set_cover(30, 60, 0.01, np.random.default_rng(0))


def test_encode_objective_node_last():
    inst = generate_set_cover(10, 20, 0.2, np.random.default_rng(0))
    g = encode(inst)
    assert g.cons_feats.shape == (11, 4) and g.var_feats.shape == (20, 6) and g.n_cons == 11
    obj_edges = g.edge_index[:, g.edge_index[0] == 10]
    assert sorted(obj_edges[1].tolist()) == list(range(20))
    assert g.edge_index.shape[1] == inst.A.sum() + 20
    assert float(g.var_feats.min()) >= 9.9e-6 and float(g.var_feats.max()) <= 1.0


def test_label_pool_feasible_and_sorted():
    inst = generate_set_cover(20, 40, 0.1, np.random.default_rng(2))
    r = label_instance(inst, time_limit=5.0)
    assert (np.diff(r.objs) >= 0).all() and r.objs[0] == r.obj
    assert ((inst.A @ r.sols.T.astype(int)) >= 1).all()  # every pool solution covers every row
    assert np.allclose(r.sols @ inst.c, r.objs)


def test_pas_trust_region_delta_zero_fixes():
    inst = generate_set_cover(20, 40, 0.1, np.random.default_rng(3))
    scores = np.linspace(0, 1, 40)  # variables 0..9 are the k0 = 10 lowest
    r = solve_pas(inst, scores, k0=10, k1=0, delta=0, node_limit=1000)
    if np.isfinite(r.obj):
        assert r.sols[0][:10].sum() == 0


def test_budget_heuristics_off_is_deterministic_and_checked():
    inst = generate_set_cover(20, 40, 0.1, np.random.default_rng(4))
    best = label_instance(inst, time_limit=5.0).obj
    a, b = solve_plain(inst, 5, "off"), solve_plain(inst, 5, "off")
    assert a.obj == b.obj and a.n_nodes <= 5  # node limit, no wall clock: same answer every time
    assert a.obj >= best - 1e-9 or not np.isfinite(a.obj)
    with pytest.raises(ValueError, match="heuristics"):
        solve_plain(inst, 5, "aggressive")


def test_data_key_depends_on_label_node_limit():
    # the key also carries the code (tests/test_coco_milp_cache_key.py), so it is no longer pinned
    assert DataConfig(label_node_limit=200).key() != DataConfig().key() == DataConfig().key()


def test_early_stopping_keeps_best_epoch():
    dcfg = dict(n_rows=15, n_cols=30, density=0.15, n_train=3, n_val=2, n_test=1, label_time_limit=0.5,
                label_node_limit=50)  # fmt: skip
    data = load_dataset(DataConfig(**dcfg), use_cache=False)
    cfg = RunConfig(loss="bce", icc=False, data=dcfg, epochs=40, lr=3e-2, patience=2, run_pas=False)
    tr = train(cfg, data, seed=0)
    vals = [v for _, v in tr.curve]
    assert tr.epochs_run == len(vals) <= 40
    assert tr.best_epoch == int(np.argmin(vals)) and tr.best_val == min(vals)
    if tr.stopped_early:  # the last `patience` epochs did not improve on the best
        assert tr.epochs_run < 40 and min(vals[-2:]) >= tr.best_val and tr.best_epoch == len(vals) - 3
    assert [v for _, v in train(cfg, data, seed=0).curve] == vals  # deterministic given the seed


def test_primal_gap():
    assert primal_gap(110.0, 100.0) == pytest.approx(0.1)
    assert primal_gap(100.0, 100.0) == 0.0
    assert primal_gap(float("inf"), 100.0) == 1.0


def test_unknown_loss_raises():
    with pytest.raises(ValueError, match="unknown loss"):
        run(RunConfig(loss="mse"), 0)


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path)
    for arm in ("ps", "vcl", "coco"):
        assert 0.0 <= result["metrics"][f"{arm}/auc"]["mean"] <= 100.0
