"""Retrieval metrics from a dense (queries x corpus) score matrix with one relevant document per query.

* ``global_auc``: the paper's calibration metric (Sec. 3.1, Sec. 5.1): the positive and negative scores of
  ALL queries go into one pool, AUC = Pr(s^+ > s^-) over every (positive pair, negative pair) of the
  pool, ties counted 1/2 (the Mann-Whitney U / (n+ n-)). Here every (query, document) pair of the split
  is scored, so the pool is exact: n_q positives and n_q (n_d - 1) negatives. (The paper keeps the top 500
  negatives per query; with a corpus of at most 501 documents that is the same pool.)
* ``mrr_at_k`` / ``recall_at_k``: the usual per-query ranking metrics (one relevant document, so
  Recall@k = hit rate@k). A tie with the relevant document ranks it below the tied ones (pessimistic).
* ``best_threshold_f1``: "thresholdability": the F1 of relevance decisions s >= t over all pairs of the
  pool, for the best single global threshold t. ``f1_at_threshold`` applies a given t (e.g. one chosen
  on the validation split).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


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


def positive_mask(n_docs: int, relevant: np.ndarray) -> np.ndarray:
    mask = np.zeros((len(relevant), n_docs), dtype=bool)
    mask[np.arange(len(relevant)), relevant] = True
    return mask


def global_auc(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Pooled AUC over every (query, document) pair: U / (n+ n-) from mid-ranks (ties count 1/2)."""
    scores, relevant = _check(scores, relevant)
    y = positive_mask(scores.shape[1], relevant).ravel()
    ranks = rankdata(scores.ravel())  # average ranks: a tie between a positive and a negative gives 1/2
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def relevant_ranks(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1-based rank of each query's relevant document (ties with it count as ranked above it)."""
    scores, relevant = _check(scores, relevant)
    s_rel = scores[np.arange(len(relevant)), relevant]
    # rank = 1 + #(other documents scoring >= s_rel); the ">=" also counts the relevant document itself
    return (scores >= s_rel[:, None]).sum(1)


def mrr_at_k(scores: np.ndarray, relevant: np.ndarray, k: int = 10) -> float:
    r = relevant_ranks(scores, relevant)
    return float(np.where(r <= k, 1.0 / r, 0.0).mean())


def recall_at_k(scores: np.ndarray, relevant: np.ndarray, k: int = 10) -> float:
    return float((relevant_ranks(scores, relevant) <= k).mean())


def best_threshold_f1(scores: np.ndarray, relevant: np.ndarray) -> tuple[float, float]:
    """(best F1, its threshold t) for the rule "relevant iff s >= t", over every pair of the pool.

    Sort all pairs by score (descending); cutting after each distinct score value gives every
    achievable (TP, FP); F1 = 2 TP / (2 TP + FP + FN) with FN = n+ - TP.
    """
    scores, relevant = _check(scores, relevant)
    s = scores.ravel()
    y = positive_mask(scores.shape[1], relevant).ravel()
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
    y = positive_mask(scores.shape[1], relevant)
    pred = scores >= threshold
    tp = int((pred & y).sum())
    denom = 2 * tp + int((pred & ~y).sum()) + int((~pred & y).sum())
    return 2 * tp / denom if denom else 0.0


def score_histograms(scores: np.ndarray, relevant: np.ndarray, bins: np.ndarray) -> dict[str, list[float]]:
    """Densities of positive and negative pair scores on fixed bins (for the paper's Fig. 1 view)."""
    scores, relevant = _check(scores, relevant)
    y = positive_mask(scores.shape[1], relevant)
    pos, _ = np.histogram(scores[y], bins=bins, density=True)
    neg, _ = np.histogram(scores[~y], bins=bins, density=True)
    return {"pos": pos.round(5).tolist(), "neg": neg.round(5).tolist()}
