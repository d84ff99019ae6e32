"""The contrastive loss and its Metrix (mixup) extension, as in the official code (billpsomas/metrix).

Distances are Euclidean between L2-normalised embeddings (pytorch-metric-learning ``LpDistance()``,
which normalises both inputs, so a mixed embedding is re-normalised before the distance is taken).

Contrastive loss (paper eq. 2 specialised as in ``train.baseline_contrastive``): for all positive pairs
``l+ = relu(d - 0)`` and for all negative pairs ``l- = relu(0.5 - d)``; each set is reduced with
``AvgNonZeroReducer`` (mean over the strictly positive entries, 0 if there are none) and the two are summed.

Metrix (paper sec. 3.3-3.4, eq. 6-8): a mixed embedding ``m = lam * x + (1 - lam) * n`` with one
``lam ~ Beta(2, 2)`` per iteration gets the interpolated target, i.e. the loss
``lam * relu(d(a, m)) + (1 - lam) * relu(0.5 - d(a, m))``, again AvgNonZero-reduced per term
(``mixup/losses.loss_posneg_mixup``). Two pair schemes, one of them drawn per iteration:
  (i)  positive-negative mixing for anchors that have a positive in the batch: for every positive pair
       entry (a, p) of the anchor, the anchor's FIRST positive is mixed with each of its negatives
       (``embed_posneg_pair_mixup_for_pos_anchor``; the triples of an anchor with k positives therefore
       appear k times, which we keep because it weights the AvgNonZero mean);
  (ii) anchor-negative mixing for anchors WITHOUT a positive in the batch: ``m = lam * a + (1 - lam) * n``
       compared with ``a`` itself (``embed_neg_pair_mixup_without_posanchor``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

POS_MARGIN = 0.0  # official: margin(pos_pair_dist, 0.0)
NEG_MARGIN = 0.5  # official: ContrastiveLoss(neg_margin=0.5) and margin(0.5, pair_dist)


def all_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(a1, p, a2, n): every positive pair (a1[i], p[i]) and negative pair (a2[j], n[j]) in row-major order
    (the order of pytorch-metric-learning's ``get_all_pairs_indices``, which scheme (i) depends on)."""
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-d, got shape {tuple(labels.shape)}")
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    a1, p = torch.where(same & ~eye)
    a2, n = torch.where(~same)
    return a1, p, a2, n


def pair_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Row-wise Euclidean distance after L2 normalisation of both sides (``LpDistance()`` defaults)."""
    return torch.linalg.vector_norm(F.normalize(x, dim=1) - F.normalize(y, dim=1), dim=1)


def avg_nonzero(losses: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """``AvgNonZeroReducer``: mean of the entries > 0; a zero (that keeps the graph) when there are none.
    ``weight`` (integer multiplicities) gives the same value as repeating each entry ``weight`` times."""
    mask = losses > 0
    if not mask.any():
        return losses.sum() * 0.0
    if weight is None:
        return losses[mask].mean()
    w = weight[mask].to(losses.dtype)
    return (losses[mask] * w).sum() / w.sum()


def contrastive_loss(emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The clean contrastive loss over all pairs of the batch (``baseline_contrastive``)."""
    if emb.ndim != 2 or len(emb) != len(labels):
        raise ValueError(f"emb must be N x D with N = len(labels); got {tuple(emb.shape)}, {len(labels)}")
    a1, p, a2, n = all_pairs(labels)
    pos = F.relu(pair_distance(emb[a1], emb[p]) - POS_MARGIN)
    neg = F.relu(NEG_MARGIN - pair_distance(emb[a2], emb[n]))
    return avg_nonzero(pos) + avg_nonzero(neg)


def mixed_pair_loss(d: torch.Tensor, lam: float, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Loss of anchor-to-mixed distances ``d`` with target ``lam`` positive, ``1 - lam`` negative (eq. 8 with
    the contrastive l+ and l-), each term AvgNonZero-reduced (``loss_posneg_mixup`` + two reducers)."""
    pos = lam * F.relu(d - POS_MARGIN)
    neg = (1.0 - lam) * F.relu(NEG_MARGIN - d)
    return avg_nonzero(pos, weight) + avg_nonzero(neg, weight)


@dataclass(frozen=True)
class Triples:
    """Index triples for one mixing scheme: anchor ``a`` is compared with ``lam * x + (1 - lam) * n``."""

    a: torch.Tensor
    x: torch.Tensor  # the positive (scheme i) or the anchor itself (scheme ii)
    n: torch.Tensor
    weight: torch.Tensor  # how many times the official code lists this triple (AvgNonZero multiplicity)

    def __len__(self) -> int:
        return len(self.a)


def posneg_triples(labels: torch.Tensor) -> Triples:
    """Scheme (i): for every positive pair entry (a, p), all negatives n of a, mixed with the FIRST positive
    of a. The official code lists each (a, n) block once per positive of a; we list it once with that count
    as its weight (identical AvgNonZero value, a third of the work; ``expand`` gives the literal list)."""
    a1, p, a2, n = all_pairs(labels)
    N = len(labels)
    # pairs are row-major, so an anchor's first positive is its smallest positive index (N = none)
    first_pos = torch.full((N,), N, dtype=torch.long, device=labels.device)
    first_pos = first_pos.scatter_reduce(0, a1, p, reduce="amin")
    n_pos = torch.bincount(a1, minlength=N)
    keep = n_pos[a2] > 0
    a = a2[keep]
    return Triples(a, first_pos[a], n[keep], n_pos[a])


def ancneg_pairs(labels: torch.Tensor) -> Triples:
    """Scheme (ii): all negative pairs (a, n) whose anchor has no positive in the batch; x = a."""
    a1, _, a2, n = all_pairs(labels)
    has_pos = torch.zeros(len(labels), dtype=torch.bool, device=labels.device)
    has_pos[a1] = True
    keep = ~has_pos[a2]
    return Triples(a2[keep], a2[keep], n[keep], torch.ones_like(a2[keep]))


def expand(t: Triples) -> Triples:
    """The official code's literal list, each triple repeated ``weight`` times (same multiset, for tests)."""
    idx = torch.repeat_interleave(torch.arange(len(t), device=t.a.device), t.weight)
    return Triples(t.a[idx], t.x[idx], t.n[idx], torch.ones_like(idx))


def mix(x: torch.Tensor, n: torch.Tensor, lam: float) -> torch.Tensor:
    """``mixup_data``: lam * x + (1 - lam) * n (embeddings, or feature maps in feature mode)."""
    return lam * x + (1.0 - lam) * n


def embed_metrix_loss(emb: torch.Tensor, t: Triples, lam: float) -> torch.Tensor:
    """Embedding-mode mixed loss for one scheme: mix the (normalised) embeddings, compare with the anchor."""
    if len(t) == 0:
        return emb.sum() * 0.0  # no usable pairs this batch (the official code would crash here)
    mixed = mix(emb[t.x], emb[t.n], lam)
    return mixed_pair_loss(pair_distance(emb[t.a], mixed), lam, t.weight)
