"""All-pairs retrieval metrics as this package calls them (xentlab.metrics.ranking on one relevant document
per query): AUC vs scikit-learn and the paper's Fig. 3 case, MRR/Recall by hand, best-threshold F1 vs brute
force. The shared functions' own tests are shared/tests/test_metrics_ranking.py."""

import numpy as np
import pytest
from mw_auc.metrics import best_threshold_f1, f1_at_threshold, relevance, score_histograms
from sklearn.metrics import roc_auc_score

from xentlab.metrics.ranking import mrr_at_k, pooled_auc, ranked_gains, recall_at_k


@pytest.mark.parametrize("seed", range(4))
def test_pooled_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(9, 13)).round(1)  # rounding makes ties between positives and negatives
    rel = rng.integers(0, 13, size=9)
    y = np.zeros_like(scores, dtype=bool)
    y[np.arange(9), rel] = True
    s, targets = relevance(scores, rel)
    assert (targets == y).all()
    assert pooled_auc(s, targets) == pytest.approx(roc_auc_score(y.ravel(), scores.ravel()), abs=1e-12)


def test_pooled_auc_sees_per_query_shifts_but_mrr_does_not():
    # two queries, each ranks its own document first, but query 1's scores are all lower: MRR = 1,
    # pooled AUC < 1 (query 0's negatives outscore query 1's positive) -- the paper's Fig. 3
    s, y = relevance(np.array([[0.9, 0.8, 0.7], [0.5, 0.6, 0.4]]), np.array([0, 1]))
    assert mrr_at_k(s, y, 3) == 1.0
    # negatives: 0.8, 0.7, 0.5, 0.4; positive 0.9 beats 4, positive 0.6 beats 2 -> 6/8
    assert pooled_auc(s, y) == pytest.approx(6 / 8)


def test_ranks_mrr_recall_by_hand():
    scores = np.array([[0.1, 0.9, 0.5, 0.3], [0.4, 0.4, 0.2, 0.1], [0.0, 0.1, 0.2, 0.3]])
    s, y = relevance(scores, np.array([2, 1, 0]))
    # query 0: 0.5 is 2nd; query 1: a tie with doc 0 ranks it below (pessimistic) -> 2; query 2: 4th
    assert [int(np.argmax(r)) + 1 for r in ranked_gains(s, y) > 0] == [2, 2, 4]
    assert mrr_at_k(s, y, 4) == pytest.approx((1 / 2 + 1 / 2 + 1 / 4) / 3)
    assert mrr_at_k(s, y, 3) == pytest.approx((1 / 2 + 1 / 2) / 3)
    assert recall_at_k(s, y, 2) == pytest.approx(2 / 3)


def brute_force_f1(scores, rel):
    y = np.zeros_like(scores, dtype=bool)
    y[np.arange(len(rel)), rel] = True
    best = 0.0
    for t in np.unique(scores):
        p = scores >= t
        tp = (p & y).sum()
        best = max(best, 2 * tp / (2 * tp + (p & ~y).sum() + (~p & y).sum()))
    return best


@pytest.mark.parametrize("seed", range(4))
def test_best_threshold_f1_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(8, 10)).round(1)
    rel = rng.integers(0, 10, size=8)
    f1, thr = best_threshold_f1(scores, rel)
    assert f1 == pytest.approx(brute_force_f1(scores, rel))
    assert f1_at_threshold(scores, rel, thr) == pytest.approx(f1)


def test_perfectly_separable_scores():
    scores = np.array([[0.9, 0.1, 0.2], [0.0, 0.8, 0.3]])
    rel = np.array([0, 1])
    assert pooled_auc(*relevance(scores, rel)) == 1.0
    assert best_threshold_f1(scores, rel) == (1.0, 0.8)
    assert f1_at_threshold(scores, rel, 2.0) == 0.0  # nothing predicted relevant


def test_histograms_are_densities():
    rng = np.random.default_rng(0)
    scores = rng.uniform(-1, 1, size=(20, 30))
    bins = np.linspace(-1, 1, 21)
    h = score_histograms(scores, rng.integers(0, 30, 20), bins)
    for k in ("pos", "neg"):
        assert np.sum(h[k]) * 0.1 == pytest.approx(1.0, abs=1e-3)


def test_clear_errors():
    with pytest.raises(ValueError, match="relevant"):
        relevance(np.zeros((3, 4)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        relevance(np.zeros((2, 4)), np.array([0, 4]))
    with pytest.raises(ValueError, match="finite"):
        best_threshold_f1(np.array([[np.nan, 0.0]]), np.array([0]))
