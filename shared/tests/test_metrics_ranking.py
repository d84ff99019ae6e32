"""xentlab.metrics.ranking: hand-derived values, tie policy, and agreement with scikit-learn and
torchmetrics.retrieval on random inputs with ties."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from xentlab.metrics.ranking import (
    mrr_at_k,
    ndcg_at_k,
    one_hot_targets,
    pooled_auc,
    precision_at_k,
    ranked_gains,
    recall_at_k,
)

L3, L4 = math.log2(3), math.log2(4)


def test_hand_values_binary():
    scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4]])
    y = np.array([[1, 0, 1, 0], [0, 0, 0, 1]], dtype=bool)
    # row 0 ranks items 0,1,2,3 -> hits 1,0,1,0 (|P| = 2); row 1 ranks 3,2,1,0 -> hits 1,0,0,0 (|P| = 1)
    assert ranked_gains(scores, y, 3).tolist() == [[1, 0, 1], [1, 0, 0]]
    assert precision_at_k(scores, y, 1) == pytest.approx(1.0)
    assert precision_at_k(scores, y, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert recall_at_k(scores, y, 1) == pytest.approx((1 / 2 + 1) / 2)
    assert recall_at_k(scores, y, 3) == pytest.approx(1.0)
    assert mrr_at_k(scores, y, 3) == pytest.approx(1.0)
    # nDCG@3, row 0: DCG = 1 + 1/log2(4); IDCG (2 positives) = 1 + 1/log2(3); row 1: 1
    assert ndcg_at_k(scores, y, 3) == pytest.approx(((1 + 1 / L4) / (1 + 1 / L3) + 1) / 2)


def test_hand_values_mrr_and_graded_ndcg():
    scores = np.array([[0.1, 0.9, 0.5, 0.3], [0.0, 0.1, 0.2, 0.3]])
    y = np.array([[0, 0, 1, 0], [1, 0, 0, 0]])
    # row 0: the relevant item is 2nd -> 1/2; row 1: it is 4th -> 1/4 (0 at k = 3)
    assert mrr_at_k(scores, y, 4) == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert mrr_at_k(scores, y, 3) == pytest.approx((1 / 2 + 0) / 2)
    # graded: ranking 5, 2, 9, ... with gains {2: 2, 9: 1, 7: 1}; nDCG@3:
    # DCG = 0 + 2/log2(3) + 1/log2(4); IDCG = 2 + 1/log2(3) + 1/log2(4)
    s = -np.arange(12, dtype=float)
    s[[5, 2, 9]] = [3.0, 2.0, 1.0]
    g = np.zeros(12)
    g[[2, 9, 7]] = [2, 1, 1]
    assert ndcg_at_k(s[None], g[None], 3) == pytest.approx((2 / L3 + 1 / L4) / (2 + 1 / L3 + 1 / L4))
    assert recall_at_k(s[None], g[None], 3) == pytest.approx(2 / 3)
    assert precision_at_k(s[None], g[None], 3) == pytest.approx(2 / 3)


def test_ties_pessimistic_and_optimistic():
    # the relevant item 1 ties with item 0 at the top: pessimistic puts it 2nd, optimistic 1st
    scores = np.array([[0.4, 0.4, 0.2, 0.1]])
    y = np.array([[0, 1, 0, 0]])
    assert mrr_at_k(scores, y, 4) == 0.5 and mrr_at_k(scores, y, 4, ties="optimistic") == 1.0
    assert precision_at_k(scores, y, 1) == 0.0 and precision_at_k(scores, y, 1, ties="optimistic") == 1.0
    assert ndcg_at_k(scores, y, 2) == pytest.approx(1 / L3)
    # all scores equal: pessimistic ranks every relevant item last
    assert ranked_gains(np.zeros((1, 4)), np.array([[1, 0, 2, 0]])).tolist() == [[0, 0, 1, 2]]


def test_rows_without_positives_are_skipped_and_perfect_ranking_is_one():
    y = torch.tensor([[True, True, False], [False, False, False]])
    s = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])  # torch inputs are accepted
    for fn in (precision_at_k, recall_at_k, mrr_at_k, ndcg_at_k):
        assert fn(s, y, 2) == pytest.approx(1.0)
    assert ndcg_at_k(s, y, 3) == pytest.approx(1.0)  # IDCG uses min(k, |P|) positions
    assert precision_at_k(s, y, 3) == pytest.approx(2 / 3)  # divides by k even when |P| < k


def test_k_larger_than_the_row():
    # 4 items, k = 10: the whole row is the top k; P@k still divides by k (torchmetrics does the same)
    scores = np.array([[0.1, 0.9, 0.5, 0.3]])
    y = np.array([[0, 0, 1, 1]])
    assert mrr_at_k(scores, y, 10) == mrr_at_k(scores, y, 4) == 0.5
    assert ndcg_at_k(scores, y, 10) == ndcg_at_k(scores, y, 4)
    assert recall_at_k(scores, y, 10) == 1.0 and precision_at_k(scores, y, 10) == pytest.approx(2 / 10)


def _random_case(seed: int, n: int = 12, m: int = 15, graded: bool = False):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n, m)).round(1)  # rounding to 0.1 makes many ties
    targets = rng.random((n, m)) < 0.2
    targets[np.arange(n), rng.integers(0, m, n)] = True  # every row has a relevant item
    if graded:
        targets = targets * rng.integers(1, 4, size=(n, m))
    # a tie-free copy that orders exactly as the pessimistic rule: within a tie, lower gain first
    # (the offsets are < 0.1 / 2, so they never cross two different rounded scores)
    perturbed = scores - 1e-3 * targets.astype(float)
    return scores, targets, perturbed


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [1, 3, 10, 20])
def test_matches_torchmetrics_with_ties(seed, k):
    from torchmetrics.functional.retrieval import (
        retrieval_normalized_dcg,
        retrieval_precision,
        retrieval_recall,
        retrieval_reciprocal_rank,
    )

    scores, targets, perturbed = _random_case(seed, graded=False)
    scores_g, gains, perturbed_g = _random_case(seed + 100, graded=True)
    # torchmetrics >= 1.x counts a relevant item only where its score is > 0 (retrieval_precision /
    # retrieval_recall filter on preds > 0), so its inputs are shifted to positive scores (same ranking)
    p, t = torch.from_numpy(perturbed + 10.0), torch.from_numpy(targets)
    pg, tg = torch.from_numpy(perturbed_g + 10.0), torch.from_numpy(gains).long()

    def tm(fn, p, t):
        return float(np.mean([fn(p[i], t[i], top_k=k).item() for i in range(len(p))]))

    assert precision_at_k(scores, targets, k) == pytest.approx(tm(retrieval_precision, p, t), abs=1e-6)
    assert recall_at_k(scores, targets, k) == pytest.approx(tm(retrieval_recall, p, t), abs=1e-6)
    assert mrr_at_k(scores, targets, k) == pytest.approx(tm(retrieval_reciprocal_rank, p, t), abs=1e-6)
    # torchmetrics returns float32 values
    assert ndcg_at_k(scores, targets, k) == pytest.approx(tm(retrieval_normalized_dcg, p, t), abs=1e-6)
    assert ndcg_at_k(scores_g, gains, k) == pytest.approx(tm(retrieval_normalized_dcg, pg, tg), abs=1e-6)
    # pessimistic <= optimistic, with equality when the perturbed (tie-free) scores are used
    for fn in (precision_at_k, recall_at_k, mrr_at_k, ndcg_at_k):
        assert fn(scores, targets, k) <= fn(scores, targets, k, ties="optimistic") + 1e-12
        assert fn(perturbed, targets, k) == pytest.approx(fn(perturbed, targets, k, ties="optimistic"))


@pytest.mark.parametrize("seed", range(3))
def test_ndcg_matches_sklearn(seed):
    from sklearn.metrics import ndcg_score

    scores, gains, perturbed = _random_case(seed, graded=True)
    for k in (1, 5, 15):
        # sklearn's ignore_ties=True takes a sort order: exact on the tie-free copy
        ref = ndcg_score(gains, perturbed, k=k, ignore_ties=True)
        assert ndcg_at_k(scores, gains, k) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_pooled_auc_matches_sklearn_and_mann_whitney_with_ties(seed):
    from sklearn.metrics import roc_auc_score

    scores, targets, _ = _random_case(seed)
    assert pooled_auc(scores, targets) == pytest.approx(roc_auc_score(targets.ravel(), scores.ravel()))
    # the Mann-Whitney definition by brute force: Pr(s+ > s-) + 1/2 Pr(s+ = s-)
    pos, neg = scores[targets], scores[~targets]
    u = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert pooled_auc(scores, targets) == pytest.approx(u / (pos.size * neg.size), abs=1e-12)
    # 1-d pools are accepted
    assert pooled_auc(np.r_[pos, neg], np.r_[np.ones(pos.size), np.zeros(neg.size)]) == pytest.approx(
        pooled_auc(scores, targets), abs=1e-12
    )


def test_pooled_auc_compares_across_queries():
    # both queries rank their own item first (MRR = 1) but query 1's scores are all lower: the pooled
    # AUC sees it. Negatives 0.8, 0.7, 0.5, 0.4; 0.9 beats 4, 0.6 beats 2 -> 6/8
    scores = np.array([[0.9, 0.8, 0.7], [0.5, 0.6, 0.4]])
    y = one_hot_targets([0, 1], 3)
    assert mrr_at_k(scores, y, 3) == 1.0
    assert pooled_auc(scores, y) == pytest.approx(6 / 8)


def test_float32_torch_and_float64_numpy_agree():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(20, 30, generator=g)
    y = torch.rand(20, 30, generator=g) < 0.1
    y[:, 0] = True
    for fn in (precision_at_k, recall_at_k, mrr_at_k, ndcg_at_k):
        assert fn(s, y, 5) == fn(s.double().numpy(), y.numpy(), 5)


def test_clear_errors():
    s, y = np.zeros((2, 3)), np.ones((2, 3), dtype=bool)
    with pytest.raises(ValueError, match="k must be"):
        precision_at_k(s, y, 0)
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k(s, y, 2.0)
    with pytest.raises(ValueError, match=r"\(N, L\)"):
        mrr_at_k(s, np.ones((2, 2)), 1)
    with pytest.raises(ValueError, match="NaN"):
        recall_at_k(np.array([[np.nan, 0.0]]), np.array([[1, 0]]), 1)
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_at_k(s, -y.astype(float), 1)
    with pytest.raises(ValueError, match="no row has a relevant"):
        precision_at_k(s, np.zeros((2, 3)), 1)
    with pytest.raises(ValueError, match="ties"):
        mrr_at_k(s, y, 1, ties="random")
    with pytest.raises(ValueError, match="at least one relevant and one irrelevant"):
        pooled_auc(s, y)
    with pytest.raises(ValueError, match="finite"):
        pooled_auc(np.array([np.inf, 0.0]), np.array([1, 0]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        one_hot_targets([0, 3], 3)


def test_one_hot_targets_rejects_negative_indices():
    # -1 would silently mark the last item (numpy's negative indexing)
    assert one_hot_targets([2, 0], 3).tolist() == [[False, False, True], [True, False, False]]
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        one_hot_targets([0, -1], 3)


def test_pooled_auc_small_graded_gains_are_relevant():
    # relevant means gain > 0, also for fractional gains: the 0.2- and 0.3-gain items are the positives
    scores = np.array([[0.9, 0.1, 0.5], [0.4, 0.8, 0.2]])
    gains = np.array([[0.2, 0.0, 0.0], [0.0, 0.3, 0.0]])
    # positives 0.9, 0.8 beat every negative (0.5, 0.4, 0.2, 0.1)
    assert pooled_auc(scores, gains) == 1.0
    assert pooled_auc(-scores, gains) == 0.0


def test_importing_xentlab_metrics_does_not_import_torchmetrics():
    code = (
        "import sys, xentlab.metrics, xentlab.metrics.ranking; "
        "assert 'torchmetrics' not in sys.modules and 'sklearn' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
