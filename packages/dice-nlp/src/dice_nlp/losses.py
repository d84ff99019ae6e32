"""The losses compared in Li et al., "Dice Loss for Data-imbalanced NLP Tasks" (ACL 2020): the
self-adjusting dice loss (DSC), focal loss and weighted cross-entropy.

Shapes follow ``torch.nn.functional.cross_entropy`` with the class axis LAST, as a tagger emits it:
``logits (..., C)`` and integer ``target (...)``; positions where ``target == ignore_index`` (padding)
take no part in the loss. ``C == 1`` is the binary case (one logit, sigmoid, target in {0, 1}).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")


def _check(
    logits: Tensor, target: Tensor, ignore_index: int, reduction: str
) -> tuple[Tensor, Tensor, Tensor]:
    """Flatten to (N, C) / (N,), validate, and return (logits, target, keep-mask)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got {logits.dtype}")
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices, got {target.dtype}")
    if logits.dim() < 1 or logits.shape[:-1] != target.shape:
        raise ValueError(
            f"logits must be (..., C) with target (...) of the same leading shape; got logits "
            f"{tuple(logits.shape)} and target {tuple(target.shape)}"
        )
    num_classes = logits.shape[-1]
    flat_logits, flat_target = logits.reshape(-1, num_classes), target.reshape(-1)
    keep = flat_target != ignore_index
    valid = flat_target[keep]
    upper = 2 if num_classes == 1 else num_classes
    if valid.numel() and (valid.min() < 0 or valid.max() >= upper):
        raise ValueError(
            f"target values must lie in [0, {upper}) (or equal ignore_index={ignore_index}); "
            f"got range [{int(valid.min())}, {int(valid.max())}]"
        )
    return flat_logits, flat_target, keep


def _reduce(per_item: Tensor, keep: Tensor, reduction: str, shape: torch.Size) -> Tensor:
    """Mean over the kept positions (as F.cross_entropy with ignore_index), sum, or per position
    (ignored positions hold 0)."""
    per_item = per_item * keep.to(per_item.dtype)
    if reduction == "none":
        return per_item.reshape(shape)
    if reduction == "sum":
        return per_item.sum()
    return per_item.sum() / keep.sum().clamp(min=1)


def _log_one_minus_p(logits: Tensor) -> Tensor:
    """log(1 - p) for p = softmax(logits) (sigmoid when C == 1), computed stably:
    log(1 - p_c) = logsumexp_{j != c} z_j - logsumexp_j z_j, and log(1 - sigmoid(z)) = logsigmoid(-z)."""
    if logits.shape[-1] == 1:
        return F.logsigmoid(-logits)
    num_classes = logits.shape[-1]
    eye = torch.eye(num_classes, dtype=torch.bool, device=logits.device)
    others = logits.unsqueeze(-2).masked_fill(eye, float("-inf"))  # (N, C, C): row c drops class c
    return torch.logsumexp(others, dim=-1) - torch.logsumexp(logits, dim=-1, keepdim=True)


def dice_loss(
    logits: Tensor,
    target: Tensor,
    *,
    alpha: float = 0.01,
    smooth: float = 1.0,
    square_denominator: bool = True,
    batch_dice: bool = False,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> Tensor:
    """Self-adjusting dice loss (DSC), paper Sec. 3.4 / official ``loss/dice_loss.py``.

    Probabilities p = softmax(logits) (sigmoid when C == 1) are re-weighted as
        p~ = (1 - p)^alpha * p                                  (paper Eq. 12: deemphasise easy examples)
    and each class c contributes a binary dice term on (p~_c, y_c = 1[target == c]). Per token i:
        square_denominator=True  (every released script, ``--dice_square``):
            l_ic = 1 - (2 p~_ic y_ic + s) / (p~_ic^2 + y_ic^2 + s)        (Milletari et al. form, paper Eq. 10)
        square_denominator=False (the paper's DSC formula, Table 1):
            l_ic = 1 - (2 p~_ic y_ic + s) / (p~_ic + y_ic + s)
    and the token's loss is the SUM over classes, l_i = sum_c l_ic (the official multi-class path loops over
    the classes and adds the per-class losses). ``reduction`` then averages (or sums) l_i over the kept tokens.
    With alpha = 0 this is the plain dice loss (DL).

    ``batch_dice=True`` pools the tokens inside each class first, the ratio of sums
        L = sum_c [1 - (2 sum_i p~_ic y_ic + s) / (sum_i p~_ic^k + sum_i y_ic^k + s)],  k = 2 or 1,
    which is what the official BINARY path (one logit, used for the MRC-NER start/end tags and MRPC)
    computes over a whole batch; it returns a scalar (reduction "none" is refused).
    """
    flat_logits, flat_target, keep = _check(logits, target, ignore_index, reduction)
    if alpha < 0 or smooth < 0:
        raise ValueError(f"alpha and smooth must be >= 0, got alpha={alpha}, smooth={smooth}")
    if batch_dice and reduction == "none":
        raise ValueError(
            "batch_dice=True pools all tokens into one dice ratio per class; use 'mean' or 'sum'"
        )
    num_classes = flat_logits.shape[-1]
    safe_target = torch.where(keep, flat_target, torch.zeros_like(flat_target))
    if num_classes == 1:  # binary: one logit, p = sigmoid, a single dice term on the positive class
        p = torch.sigmoid(flat_logits)
        y = safe_target.to(p.dtype).unsqueeze(-1)
    else:
        p = torch.softmax(flat_logits, dim=-1)
        y = F.one_hot(safe_target, num_classes).to(p.dtype)
    if alpha != 0:
        # p~ = (1 - p)^alpha * p (Eq. 12), with (1 - p)^alpha = exp(alpha * log(1 - p)) and log(1 - p) taken
        # from the logits: a saturated softmax gives p == 1.0 in floating point, where (1 - p).pow(alpha) has
        # an infinite derivative and training turns to NaN; this form has the same value and a finite gradient.
        p = torch.exp(alpha * _log_one_minus_p(flat_logits)) * p
    k = 2 if square_denominator else 1
    if batch_dice:
        w = keep.to(p.dtype).unsqueeze(-1)  # padding contributes neither to the sums nor to the counts
        num = 2.0 * (p * y * w).sum(0) + smooth
        den = (p.pow(k) * w).sum(0) + (y.pow(k) * w).sum(0) + smooth
        return (1.0 - num / den).sum()
    per_token = (1.0 - (2.0 * p * y + smooth) / (p.pow(k) + y.pow(k) + smooth)).sum(-1)
    return _reduce(per_token, keep, reduction, target.shape)


def focal_loss(
    logits: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    class_weights: Tensor | Sequence[float] | None = None,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> Tensor:
    """Focal loss (Lin et al. 2017), as the official ``loss/focal_loss.py`` computes it:
        FL_i = -w_{y_i} (1 - p_{i,y_i})^gamma log p_{i,y_i}
    with p = softmax(logits) and optional per-class weights w (the official ``alpha`` list multiplies
    log p_t). The official class defaults to gamma = 0 and reduction "none"; its scripts pass gamma = 2
    (gamma = 3 in the CoNLL03 focal script) and average. C == 1 is the binary case on [1 - sigmoid, sigmoid].
    """
    flat_logits, flat_target, keep = _check(logits, target, ignore_index, reduction)
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if flat_logits.shape[-1] == 1:  # two-column log-probabilities from one logit, like the official helper
        flat_logits = torch.cat([torch.zeros_like(flat_logits), flat_logits], dim=-1)
    safe_target = torch.where(keep, flat_target, torch.zeros_like(flat_target))
    logp_t = F.log_softmax(flat_logits, dim=-1).gather(1, safe_target.unsqueeze(1)).squeeze(1)
    per_token = -((1.0 - logp_t.exp()).pow(gamma)) * logp_t
    if class_weights is not None:
        w = torch.as_tensor(class_weights, dtype=per_token.dtype, device=per_token.device)
        if w.shape != (flat_logits.shape[-1],):
            raise ValueError(
                f"class_weights must have one entry per class ({flat_logits.shape[-1]}), got {tuple(w.shape)}"
            )
        per_token = per_token * w[safe_target]
    return _reduce(per_token, keep, reduction, target.shape)


def paper_class_weights(counts: Sequence[int] | Tensor, k: float = 1.0) -> Tensor:
    """Weighted-CE coefficients of the paper (Sec. 3.2): alpha_t = lg((n - n_t) / n_t + K), with n_t the
    training count of class t, n the total and K a hyperparameter (the paper does not report its value).
    A class absent from training (n_t = 0) gets the largest weight of the present classes."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.dim() != 1 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(f"counts must be a 1-D tensor of non-negative class counts, got {counts}")
    if k <= 0:
        raise ValueError(f"K must be > 0 so that every weight is positive, got {k}")
    n = counts.sum()
    present = counts > 0
    w = torch.zeros_like(counts)
    w[present] = torch.log10((n - counts[present]) / counts[present] + k)
    w[~present] = w[present].max() if present.any() else math.log10(1 + k)
    return w.float()


def weighted_cross_entropy(
    logits: Tensor,
    target: Tensor,
    class_weights: Tensor,
    *,
    reduction: str = "mean",
    ignore_index: int = -100,
) -> Tensor:
    """Weighted CE of the paper (Sec. 3.2, Eq. 2): WCE = -(1/N) sum_i alpha_{y_i} log p_{i, y_i}.

    "mean" divides by N, the number of kept tokens, as Eq. 2 does; torch's own weighted mean
    (``F.cross_entropy(weight=..., reduction="mean")``) would divide by sum_i alpha_{y_i} instead, which makes the
    per-token weight of a batch depend on how many entity tokens the batch holds. The official code has no
    weighted CE."""
    flat_logits, flat_target, keep = _check(logits, target, ignore_index, reduction)
    per_token = F.cross_entropy(
        flat_logits,
        flat_target,
        weight=class_weights.to(flat_logits),
        reduction="none",
        ignore_index=ignore_index,
    )  # alpha_{y_i} * (-log p_{i, y_i}), 0 at ignored positions
    return _reduce(per_token, keep, reduction, target.shape)


def cross_entropy(
    logits: Tensor, target: Tensor, *, reduction: str = "mean", ignore_index: int = -100
) -> Tensor:
    """Plain CE with the same (..., C) convention as the other losses here."""
    flat_logits, flat_target, _ = _check(logits, target, ignore_index, reduction)
    out = F.cross_entropy(flat_logits, flat_target, reduction=reduction, ignore_index=ignore_index)
    return out.reshape(target.shape) if reduction == "none" else out
