"""Thresholdability metrics from a dense (queries x corpus) score matrix with one relevant document per query.

The ranking metrics (the paper's pooled AUC, Sec. 3.1 / 5.1, MRR@k, Recall@k) are the shared
``xentlab.metrics.ranking`` (``pooled_auc`` = scikit-learn's ``roc_auc_score`` over every (query,
document) pair pooled, ties 1/2; ``mrr_at_k`` / ``recall_at_k`` with ties ranked pessimistically);
``relevance`` builds their (n_q, n_d) target matrix. What stays here is specific to this paper's notes:

* ``best_threshold_f1``: "thresholdability": the F1 of relevance decisions s >= t over all pairs of the
  pool, for the best single global threshold t. ``f1_at_threshold`` applies a given t (e.g. one chosen
  on the validation split).
* ``score_histograms``: positive / negative score densities (the paper's Fig. 1 view).
"""

from __future__ import annotations

import numpy as np

from xentlab.metrics.ranking import one_hot_targets


def _check(scores: np.ndarray, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=np.int64)
    if scores.ndim != 2 or relevant.shape != (scores.shape[0],):
        raise ValueError(f"need scores (n_q, n_d) and relevant (n_q,), got {scores.shape}, {relevant.shape}")
    if scores.shape[1] < 2 or scores.shape[0] < 1:
        raise ValueError(f"need at least 1 query and 2 documents, got {scores.shape}")
    if relevant.min() < 0 or relevant.max() >= scores.shape[1]:
        raise ValueError(f"relevant indices must be in [0, {scores.shape[1]})")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    return scores, relevant


def relevance(scores: np.ndarray, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores, targets) for ``xentlab.metrics.ranking``: validated float64 scores and the (n_q, n_d) bool
    matrix with each query's relevant document."""
    scores, relevant = _check(scores, relevant)
    return scores, one_hot_targets(relevant, scores.shape[1])


def best_threshold_f1(scores: np.ndarray, relevant: np.ndarray) -> tuple[float, float]:
    """(best F1, its threshold t) for the rule "relevant iff s >= t", over every pair of the pool.

    Sort all pairs by score (descending); cutting after each distinct score value gives every
    achievable (TP, FP); F1 = 2 TP / (2 TP + FP + FN) with FN = n+ - TP.
    """
    scores, relevant = _check(scores, relevant)
    s = scores.ravel()
    y = one_hot_targets(relevant, scores.shape[1]).ravel()
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    last = np.r_[s[1:] != s[:-1], True]  # a cut is only possible after the last pair of a tied value
    tp, fp, thr = tp[last], fp[last], s[last]
    f1 = 2 * tp / (2 * tp + fp + (y.sum() - tp))
    j = int(np.argmax(f1))
    return float(f1[j]), float(thr[j])


def f1_at_threshold(scores: np.ndarray, relevant: np.ndarray, threshold: float) -> float:
    scores, relevant = _check(scores, relevant)
    y = one_hot_targets(relevant, scores.shape[1])
    pred = scores >= threshold
    tp = int((pred & y).sum())
    denom = 2 * tp + int((pred & ~y).sum()) + int((~pred & y).sum())
    return 2 * tp / denom if denom else 0.0


def score_histograms(scores: np.ndarray, relevant: np.ndarray, bins: np.ndarray) -> dict[str, list[float]]:
    """Densities of positive and negative pair scores on fixed bins (for the paper's Fig. 1 view)."""
    scores, relevant = _check(scores, relevant)
    y = one_hot_targets(relevant, scores.shape[1])
    pos, _ = np.histogram(scores[y], bins=bins, density=True)
    neg, _ = np.histogram(scores[~y], bins=bins, density=True)
    return {"pos": pos.round(5).tolist(), "neg": neg.round(5).tolist()}
