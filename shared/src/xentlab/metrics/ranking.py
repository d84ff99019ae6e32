"""Ranking metrics from a dense (queries x items) score matrix: P@k, Recall@k, MRR@k, nDCG@k, pooled AUC.

Shared by the retrieval / extreme multi-label packages (dexml, mw-auc). Every function takes

* ``scores``: (N, L) real scores (numpy array, torch tensor or nested lists); higher = more relevant;
  NaN is rejected, +-inf is allowed (e.g. an item removed from a ranking by a score of -inf);
* ``targets``: (N, L) relevance, either bool or non-negative gains (graded relevance, as in BEIR qrels);
  an item is *relevant* when its gain is > 0.

Conventions (one place, so the packages agree):

* **Ties** between scores are broken by relevance, so the metric does not depend on a sort's internal
  order: ``ties="pessimistic"`` (default) ranks a tied item with a lower gain first (a relevant item
  lands below the irrelevant items it ties with), ``ties="optimistic"`` the reverse. Without ties both
  equal the plain descending sort, which is what torchmetrics.retrieval / scikit-learn compute.
* **Rows without any relevant item are skipped** (the XMC evaluators' and BEIR's convention; torchmetrics'
  ``empty_target_action="skip"``); a ValueError if no row has one.
* k may exceed the number of items L: the top k is then the whole row (as torchmetrics' ``top_k``).
* P@k = |top-k ∩ P| / k, dividing by k even when |P| < k or L < k (the XMC convention; torchmetrics
  ``retrieval_precision(top_k=k, adaptive_k=False)``).
* Recall@k = |top-k ∩ P| / |P| (with one relevant item per row: the hit rate).
* MRR@k = 1 / (rank of the first relevant item) if it is within the top k, else 0.
* nDCG@k = DCG@k / IDCG@k, DCG@k = sum_{r=1..k} g_(r) / log2(r + 1) with g_(r) the gain at rank r
  (Jarvelin & Kekalainen 2002, linear gains as pytrec_eval / BEIR / torchmetrics / scikit-learn), and
  IDCG@k the DCG of the gains sorted in decreasing order (for binary gains: sum_{r=1..min(k,|P|)}).
* ``pooled_auc``: the AUC of all (score, relevant?) pairs of the matrix pooled together, i.e.
  Pr(s+ > s-) over every (relevant pair, irrelevant pair), ties counted 1/2 (Mann-Whitney U / n+ n-), via
  ``sklearn.metrics.roc_auc_score``. It compares scores ACROSS queries (a calibration metric), unlike the
  per-row metrics above.

Ranks are computed with a full per-row sort (O(N L log L)); fine for the dense matrices of the packages
(up to ~4k x 4k at EURLex-4K). torchmetrics is not imported here (the tests compare against it).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "mrr_at_k",
    "ndcg_at_k",
    "one_hot_targets",
    "pooled_auc",
    "precision_at_k",
    "ranked_gains",
    "recall_at_k",
]

TIES = ("pessimistic", "optimistic")


def _as_np(a) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor (torch is not imported here)
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _check(scores, targets) -> tuple[np.ndarray, np.ndarray]:
    s = _as_np(scores).astype(np.float64)  # float32 -> float64 is exact, so the ranking is unchanged
    g = _as_np(targets).astype(np.float64)
    if s.ndim != 2 or s.shape != g.shape:
        raise ValueError(f"scores and targets must both be (N, L); got {s.shape} and {g.shape}")
    if s.shape[0] < 1 or s.shape[1] < 1:
        raise ValueError(f"need at least one row and one column, got {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores must not contain NaN")
    if not np.isfinite(g).all() or (g < 0).any():
        raise ValueError("targets must be bool or finite non-negative gains")
    return s, g


def _check_k(k: int) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return int(k)


def _rows_with_positives(g: np.ndarray) -> np.ndarray:
    keep = (g > 0).any(axis=1)
    if not keep.any():
        raise ValueError("no row has a relevant item (all targets are 0)")
    return keep


def ranked_gains(scores, targets, k: int | None = None, *, ties: str = "pessimistic") -> np.ndarray:
    """(N, min(k, L)) gains in rank order: column r holds the gain of each row's (r+1)-th best item.

    Sorted by score (descending); tied scores are ordered by gain ascending (``"pessimistic"``) or
    descending (``"optimistic"``)."""
    s, g = _check(scores, targets)
    k = s.shape[1] if k is None else min(_check_k(k), s.shape[1])
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    tie_key = g if ties == "pessimistic" else -g
    order = np.lexsort((tie_key, -s), axis=-1)  # last key is the primary one: score descending
    return np.take_along_axis(g, order[:, :k], axis=1)


def _discount(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))  # 1 / log2(r + 1), r = 1..k


def precision_at_k(scores, targets, k: int, *, ties: str = "pessimistic") -> float:
    """Mean over rows with a relevant item of |top-k ∩ P| / k."""
    top = ranked_gains(scores, targets, k, ties=ties) > 0
    keep = _rows_with_positives(_as_np(targets))
    return float((top.sum(1) / k)[keep].mean())


def recall_at_k(scores, targets, k: int, *, ties: str = "pessimistic") -> float:
    """Mean over rows with a relevant item of |top-k ∩ P| / |P|."""
    top = ranked_gains(scores, targets, k, ties=ties) > 0
    n_pos = (_as_np(targets).astype(np.float64) > 0).sum(1)
    keep = _rows_with_positives(_as_np(targets))
    return float((top.sum(1)[keep] / n_pos[keep]).mean())


def mrr_at_k(scores, targets, k: int, *, ties: str = "pessimistic") -> float:
    """Mean over rows with a relevant item of 1 / rank of the first relevant item (0 beyond rank k)."""
    top = ranked_gains(scores, targets, k, ties=ties) > 0
    keep = _rows_with_positives(_as_np(targets))
    first = top.argmax(1)  # index of the first hit (0 when there is none: masked below)
    rr = np.where(top.any(1), 1.0 / (first + 1), 0.0)
    return float(rr[keep].mean())


def ndcg_at_k(scores, targets, k: int, *, ties: str = "pessimistic") -> float:
    """Mean over rows with a relevant item of DCG@k / IDCG@k (linear gains, log2(rank + 1) discount)."""
    top = ranked_gains(scores, targets, k, ties=ties)
    g = _check(scores, targets)[1]
    keep = _rows_with_positives(g)
    disc = _discount(top.shape[1])  # min(k, L) ranks
    dcg = top @ disc
    ideal = -np.sort(-g, axis=1)[:, : top.shape[1]]  # gains sorted in decreasing order
    idcg = ideal @ disc
    return float((dcg[keep] / idcg[keep]).mean())


def pooled_auc(scores, targets) -> float:
    """ROC AUC of every (score, relevant?) pair of the matrix pooled together (ties count 1/2).

    Any shape is accepted (it is flattened), e.g. 1-d pools of positive and negative scores."""
    from sklearn.metrics import roc_auc_score

    s = _as_np(scores).astype(np.float64).ravel()
    y = _as_np(targets).astype(np.float64).ravel() > 0
    if s.shape != y.shape:
        raise ValueError(f"scores and targets must have the same size, got {s.size} and {y.size}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if y.all() or not y.any():
        raise ValueError("the pool needs at least one relevant and one irrelevant pair")
    return float(roc_auc_score(y, s))


def one_hot_targets(relevant, n_items: int) -> np.ndarray:
    """(N, n_items) bool targets from one relevant item index per row."""
    rel = _as_np(relevant).astype(np.int64)
    if rel.ndim != 1 or rel.size < 1:
        raise ValueError(f"relevant must be a non-empty 1-d index array, got shape {rel.shape}")
    if rel.min() < 0 or rel.max() >= n_items:
        raise ValueError(f"relevant indices must be in [0, {n_items})")
    out = np.zeros((rel.size, n_items), dtype=bool)
    out[np.arange(rel.size), rel] = True
    return out
