"""The size pilot's bootstrap AUC (scripts/select_size.py) is sklearn's weighted ROC AUC, computed from one
sort per epoch instead of one per bootstrap replicate."""

import importlib.util
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score


def _script():
    path = Path(__file__).parents[1] / "scripts" / "select_size.py"
    spec = importlib.util.spec_from_file_location("fcn_select_size", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_weighted_auc_equals_sklearn_with_sample_weights_on_tie_free_scores():
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.3).astype(np.float64)
    p = rng.random(500) + 0.3 * y  # distinct scores, so the tie rule cannot matter
    w = rng.poisson(1.0, size=500).astype(np.float64)  # a bootstrap replicate's row counts
    got = _script().weighted_auc(y, np.argsort(p, kind="stable"), w)
    assert abs(got - roc_auc_score(y, p, sample_weight=w)) < 1e-12
