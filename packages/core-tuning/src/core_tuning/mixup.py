"""The 3B features of one Core-tuning step (official ``feature_mixup``): originals, hard-negative mixes and
hard-positive mixes, each with its soft label.

For a batch of B backbone features h_i with one-hot labels y_i:

* originals: (h_i, y_i). The official code feeds ``features.clone().detach()`` here, so the classifier and the
  contrastor learn from the originals but the backbone gets gradient only through the two sets of mixes; kept
  (``detach_originals=True``).
* hard-negative mixes (the paper's "hard negative generation"): with pi a random permutation and
  lambda ~ Beta(alpha, alpha) clamped to >= 0.8 (the official ``if lam[i] <= 0.8: lam[i] = 0.8``),
  ((1 - lambda) h_i + lambda h_pi(i), (1 - lambda) y_i + lambda y_pi(i)): mostly the other sample, a little of i.
* hard-positive mixes (the paper's "hard positive generation"): for anchor i, h_hn = the other-class sample of
  highest cosine to h_i (hardest negative) and h_hp = the same-class sample (other than i) of lowest cosine
  (hardest positive); with a fresh lambda ~ Beta(alpha, alpha) (no clamp), (lambda h_hp + (1 - lambda) h_hn,
  lambda y_hp + (1 - lambda) y_hn). An anchor with no same-class partner uses itself as h_hp, and one with no
  other-class sample uses itself as h_hn.

``official_argmin=True`` replicates the official index search instead: argmin / argmax over the similarity
matrix *multiplied* by the 0/1 masks (so masked entries count as similarity 0), then every hard-positive index
equal to 0 is replaced by the anchor's own index. With non-negative (post-ReLU) features the argmin then lands
on the first masked column for most anchors, i.e. the "hard positive" is the anchor itself or, for anchors of
sample 0's class, the first sample of another class (README, Deviations).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

HARD_NEGATIVE_FLOOR = 0.8
"""the official clamp: lambda of a hard-negative mix is at least 0.8"""


@dataclass
class Mixed:
    """What one Core-tuning step trains on: 3B features and their soft labels, plus the pieces for tests/logs."""

    features: torch.Tensor
    """(3B, D): originals, hard-negative mixes, hard-positive mixes"""
    soft_labels: torch.Tensor
    """(3B, C) rows summing to 1"""
    perm: torch.Tensor
    lam_negative: torch.Tensor
    hard_positive: torch.Tensor
    hard_negative: torch.Tensor
    lam_positive: torch.Tensor


def hard_pairs(
    features: torch.Tensor, labels: torch.Tensor, *, official_argmin: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(hard-positive index, hard-negative index) per sample, by cosine similarity of the features."""
    b = features.shape[0]
    with torch.no_grad():
        f = F.normalize(features, dim=1)
        sim = f @ f.T
        same = labels[:, None] == labels[None, :]
        self_mask = torch.eye(b, dtype=torch.bool, device=features.device)
        pos_mask, neg_mask = same & ~self_mask, ~same
        own = torch.arange(b, device=features.device)
        if official_argmin:
            hard_negative = (sim * neg_mask).argmax(dim=1)
            hard_positive = (sim * pos_mask).argmin(dim=1)
            hard_positive = torch.where(hard_positive == 0, own, hard_positive)
            return hard_positive, hard_negative
        hard_negative = sim.masked_fill(~neg_mask, float("-inf")).argmax(dim=1)
        hard_negative = torch.where(neg_mask.any(1), hard_negative, own)
        hard_positive = sim.masked_fill(~pos_mask, float("inf")).argmin(dim=1)
        hard_positive = torch.where(pos_mask.any(1), hard_positive, own)
    return hard_positive, hard_negative


def feature_mixup(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    alpha: float = 1.0,
    negative_floor: float = HARD_NEGATIVE_FLOOR,
    detach_originals: bool = True,
    official_argmin: bool = False,
) -> Mixed:
    """Build the 3B training features of one batch (uses the global torch RNG for pi and the lambdas)."""
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise ValueError(
            f"features must be (B, D) and labels (B,), got {tuple(features.shape)} and {tuple(labels.shape)}"
        )
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    b = features.shape[0]
    y = F.one_hot(labels, num_classes).to(features.dtype)
    beta = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))

    # hard negatives: a random partner, lambda clamped to >= 0.8 so the mix lies near the partner
    perm = torch.randperm(b, device=features.device)
    lam_n = beta.sample((b, 1)).to(features).clamp(min=negative_floor)
    f_neg = (1 - lam_n) * features + lam_n * features[perm]
    y_neg = (1 - lam_n) * y + lam_n * y[perm]

    # hard positives: mix the hardest positive with the hardest negative
    hp, hn = hard_pairs(features, labels, official_argmin=official_argmin)
    lam_p = beta.sample((b, 1)).to(features)
    f_pos = lam_p * features[hp] + (1 - lam_p) * features[hn]
    y_pos = lam_p * y[hp] + (1 - lam_p) * y[hn]

    originals = features.detach() if detach_originals else features
    return Mixed(
        features=torch.cat([originals, f_neg, f_pos]),
        soft_labels=torch.cat([y, y_neg, y_pos]),
        perm=perm,
        lam_negative=lam_n.view(-1),
        hard_positive=hp,
        hard_negative=hn,
        lam_positive=lam_p.view(-1),
    )


def soft_cross_entropy(logits: torch.Tensor, soft_labels: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum_c q_c log softmax(logits)_c (the official classification loss on all 3B rows)."""
    return -(soft_labels * F.log_softmax(logits, dim=1)).sum(1).mean()
