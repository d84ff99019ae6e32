"""Feature-geometry metrics of OPL on a whole evaluation set (not a batch).

``pair_similarities`` gives the population versions of the paper's s_pos (mean cosine over same-class
pairs, i != j) and s_neg (mean |cosine| over different-class pairs), with exact pair counts (no 1e-6
guard). ``class_pair_matrix`` gives the K x K matrix of mean cosine between the normalised features of
class a and class b (diagonal: same-class pairs with i != j), the figure's "before/after" picture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(features: torch.Tensor, labels: torch.Tensor) -> None:
    if features.ndim != 2 or labels.ndim != 1 or len(features) != len(labels):
        raise ValueError(
            f"need features (N, D) and labels (N,), got {tuple(features.shape)}, {tuple(labels.shape)}"
        )


@torch.no_grad()
def pair_similarities(features: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(s_pos, s_neg) over all pairs of the set, in float64."""
    _check(features, labels)
    f = F.normalize(features.double(), dim=1)
    dot = f @ f.T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same
    if not pos.any() or not neg.any():
        raise ValueError("need at least two samples of one class and two classes")
    return dot[pos].mean().item(), dot[neg].abs().mean().item()


@torch.no_grad()
def class_pair_matrix(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, *, absolute: bool = False
):
    """K x K mean (absolute) cosine between classes (rows/cols: class a, class b), as nested lists."""
    _check(features, labels)
    f = F.normalize(features.double(), dim=1)
    dot = f @ f.T
    if absolute:
        dot = dot.abs()
    onehot = F.one_hot(labels, num_classes).double()  # N x K
    sums = onehot.T @ dot @ onehot  # K x K sums over pairs (including i == j on the diagonal)
    counts = onehot.sum(0)
    pairs = counts[:, None] * counts[None, :]
    diag = torch.diag(onehot.T @ torch.diag(torch.diagonal(dot)) @ onehot)  # self-pairs, cos = 1
    sums = sums - torch.diag(diag)
    pairs = pairs - torch.diag(counts)
    return (sums / pairs.clamp_min(1)).tolist()
