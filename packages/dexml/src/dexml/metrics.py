"""Ranking metrics for multi-label retrieval from a dense score matrix: P@k and nDCG@k.

Written without dexml specifics so it can move to ``xentlab.metrics``. (torchmetrics.retrieval needs a
flat (preds, target, indexes) layout and loops over queries; a dense top-k is simpler and fast here.)

P@k = |top-k ∩ P| / k (the XMC convention: divide by k even when |P| < k).
nDCG@k = DCG@k / IDCG@k with binary gains, DCG@k = sum_{r=1..k} y_(r) / log2(r + 1),
IDCG@k = sum_{r=1..min(k, |P|)} 1 / log2(r + 1). Rows without positives are skipped.
"""

from __future__ import annotations

import torch


def _topk_hits(scores: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(
            f"scores and targets must be (N, L); got {tuple(scores.shape)}, {tuple(targets.shape)}"
        )
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k must be in [1, {scores.shape[1]}], got {k}")
    idx = scores.topk(k, dim=1).indices
    return targets.gather(1, idx).to(torch.float64)  # (N, k), rank order


def precision_at_k(scores: torch.Tensor, targets: torch.Tensor, k: int) -> float:
    hits = _topk_hits(scores, targets, k)
    keep = targets.any(dim=1)
    return float((hits.sum(1) / k)[keep].mean())


def ndcg_at_k(scores: torch.Tensor, targets: torch.Tensor, k: int) -> float:
    hits = _topk_hits(scores, targets, k)
    disc = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    dcg = (hits * disc).sum(1)
    n_pos = targets.sum(1).clamp(max=k)
    keep = n_pos > 0
    idcg = torch.cumsum(disc, 0)[(n_pos[keep] - 1).long()]
    return float((dcg[keep] / idcg).mean())
