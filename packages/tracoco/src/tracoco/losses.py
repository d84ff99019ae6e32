"""TraCoCo's losses, as the official code (yyliu01/TraCoCo, ``Code/VnetLA``) computes them.

Notation: logits ``z`` of shape [B, C, X, Y, Z] with C = 2 (background, foreground);
``softmax`` over the class axis unless stated otherwise.

* :func:`dice_loss` / :func:`supervised_loss`: ``0.5 * (CE + Dice)`` on the labelled half
  (``train.py``: ``loss1_sup = 0.5 * (sup_ce_loss1 + sup_dice_loss1)``).
* :func:`translation_consistency`: the translation-consistency (TC) KL between the predictions of
  two translated crops on their overlap (the paper's translation-consistency loss; official
  ``train.py``, the ``spatial_loss`` loop), with the official code's quirks
  behind flags (see the function).
* :func:`negative_entropy`: the regulariser ``mean_v sum_c p log p`` on the same overlaps
  (``NegEntropy`` in ``train.py``; minimising it raises the entropy of the overlap predictions).
* :func:`cbc_loss`: the Cross-model confident Binary Cross-entropy (CBC, the paper's semi-supervised loss;
  ``semi_crc_loss`` in ``Utils/losses.py``): a confidence-weighted CE on the confident pseudo-label
  voxels plus a negative-learning term on the voxels whose *least* likely class is very unlikely.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def dice_loss(probs: torch.Tensor, target: torch.Tensor, smooth: float = 1e-5) -> torch.Tensor:
    """``1 - (2 sum(p y) + s) / (sum(p^2) + sum(y^2) + s)`` over the whole batch (the V-Net Dice loss).

    ``probs`` is the foreground probability [B, X, Y, Z], ``target`` the binary foreground mask;
    the sums run over every voxel of every sample together, as in the official ``dice_loss``.
    """
    if probs.shape != target.shape:
        raise ValueError(f"probs and target shapes differ: {tuple(probs.shape)} vs {tuple(target.shape)}")
    target = target.float()
    intersect = torch.sum(probs * target)
    return 1 - (2 * intersect + smooth) / (torch.sum(probs * probs) + torch.sum(target * target) + smooth)


def supervised_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """``0.5 * (CE(z, y) + Dice(softmax(z)[:, 1], y == 1))`` on labelled logits [B, 2, ...], labels [B, ...]."""
    _check_binary_logits(logits)
    ce = F.cross_entropy(logits, labels.long())
    dice = dice_loss(torch.softmax(logits, dim=1)[:, 1], labels == 1)
    return 0.5 * (ce + dice), {"ce": ce.item(), "dice_loss": dice.item()}


def _check_binary_logits(logits: torch.Tensor) -> None:
    if logits.ndim < 3 or logits.shape[1] != 2:
        raise ValueError(
            f"TraCoCo's losses are written for binary segmentation: logits must be [B, 2, ...], "
            f"got {tuple(logits.shape)}"
        )


# An overlap: for one sample, the (start, end) index range along each of the 3 spatial axes.
Ranges = Sequence[tuple[int, int]]


def translation_consistency(
    logits_a: torch.Tensor,
    logits_b: torch.Tensor,
    ranges_a: Sequence[Ranges],
    ranges_b: Sequence[Ranges],
    *,
    logit_clamp: bool = True,
    softmax_axis: str = "x",
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Translation-consistency KL on the overlap of two translated crops (official ``spatial_loss``).

    ``logits_a`` [B, C, X, Y, Z] are the predictions on the first crops, ``logits_b`` on the
    translated crops; ``ranges_a[i]`` / ``ranges_b[i]`` give sample i's overlap inside each crop.
    For each sample, with ``a`` / ``b`` the overlap logits [C, x, y, z]::

        loss += mean( softmax(b) * (log softmax(b) - log_softmax(a)) )   # F.kl_div(log_softmax(a), softmax(b))

    summed (not averaged) over the samples, with no stop-gradient on either side, exactly as the
    official loop does. Samples whose overlap is empty are skipped.

    Two quirks of the official code are the defaults, each behind a flag:

    * ``logit_clamp=True``: the overlap **logits** are clamped to [1e-6, 1] before the softmax
      (``a = a.clamp(min=1e-6, max=1.)``), so voxels whose logits leave that interval carry no gradient.
    * ``softmax_axis="x"``: the official code indexes one sample, ``a = out[i][:, x0:x1, ...]``
      (shape [C, x, y, z]), then calls ``softmax(a, dim=1)``: dim 1 of that tensor is the first
      *spatial* axis, so the distributions compared are over x positions, not over classes.
      ``softmax_axis="class"`` compares per-voxel class distributions (a KL between the two
      crops' segmentation predictions, as the paper describes the loss in words).

    Returns the loss and the list of (clamped) overlap logits [a0, b0, a1, b1, ...] that
    :func:`negative_entropy` consumes (the official ``collection``).
    """
    if softmax_axis not in ("x", "class"):
        raise ValueError(f"softmax_axis must be 'x' (official) or 'class', got {softmax_axis!r}")
    if logits_a.shape != logits_b.shape:
        raise ValueError(f"logits shapes differ: {tuple(logits_a.shape)} vs {tuple(logits_b.shape)}")
    if logits_a.ndim != 5:
        raise ValueError(f"logits must be [B, C, X, Y, Z], got {tuple(logits_a.shape)}")
    if not (len(ranges_a) == len(ranges_b) == logits_a.shape[0]):
        raise ValueError("need one overlap range per sample for both crops")
    dim = 1 if softmax_axis == "x" else 0  # axes of the per-sample tensor [C, x, y, z]
    loss = logits_a.new_zeros(())
    collection: list[torch.Tensor] = []
    for i in range(logits_a.shape[0]):
        a = _crop(logits_a[i], ranges_a[i])
        b = _crop(logits_b[i], ranges_b[i])
        if a.numel() == 0 or b.numel() == 0:
            continue  # the two crops do not overlap for this sample
        if a.shape != b.shape:
            raise ValueError(f"sample {i}: overlap shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
        if logit_clamp:
            a = a.clamp(min=1e-6, max=1.0)
            b = b.clamp(min=1e-6, max=1.0)
        loss = (
            loss + F.kl_div(torch.log_softmax(a, dim=dim), torch.softmax(b, dim=dim), reduction="none").mean()
        )
        collection += [a, b]
    return loss, collection


def _crop(x: torch.Tensor, ranges: Ranges) -> torch.Tensor:
    (x0, x1), (y0, y1), (z0, z1) = ranges
    return x[:, x0:x1, y0:y1, z0:z1]


def negative_entropy(overlaps: Sequence[torch.Tensor], prob_clamp: float | None = None) -> torch.Tensor:
    """``(1/N) sum_n mean_v sum_c p log p`` over the overlap logits [C, x, y, z] (official ``NegEntropy``).

    ``p = softmax`` over the class axis (dim 0 of each per-sample tensor). It is the negative
    entropy, so adding ``hyp *`` it to the loss pushes the overlap predictions away from collapse
    onto one confident class. The BraTS code clamps ``p`` to [1e-7, 1] first (``prob_clamp=1e-7``);
    the Left Atrium code does not (``None``). An empty list gives 0 (the official code would divide
    by zero there).
    """
    if len(overlaps) == 0:
        return torch.zeros(())
    total = overlaps[0].new_zeros(())
    for z in overlaps:
        p = torch.softmax(z, dim=0)
        if prob_clamp is not None:
            p = p.clamp(min=prob_clamp, max=1.0)
        total = total + torch.sum(p.log() * p, dim=0).mean()
    return total / len(overlaps)


def cbc_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    threshold: float = 0.65,
    neg_threshold: float = 0.1,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-model confident binary cross-entropy (the paper's CBC loss; official ``semi_crc_loss``).

    With ``q = softmax(teacher)`` (the *other* network's prediction, computed without gradient),
    ``y = argmax q`` and ``p = softmax(student)``, per voxel v::

        positive_v = max_c q_v * (-log p_v[y_v])                    on voxels with max_c q_v >= threshold
        negative_v = min_c q_v * (-log clamp(1 - p_v[1 - y_v], 1e-6, 1))   on voxels with min_c q_v < neg_threshold

    and the loss is ``mean(positive over its voxels) + mean(negative over its voxels)``; a term whose
    mask is empty contributes 0. The negative term ("the complementary class is absent") uses
    ``1 - y``, so the loss is defined for two classes only.
    """
    _check_binary_logits(student_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits differ: {tuple(student_logits.shape)} vs {tuple(teacher_logits.shape)}"
        )
    teacher_logits = teacher_logits.detach()
    q = torch.softmax(teacher_logits, dim=1)
    pos_weight = q.max(dim=1).values
    pos_mask = pos_weight >= threshold
    neg_weight = q.min(dim=1).values
    neg_mask = neg_weight < neg_threshold
    y = torch.argmax(teacher_logits, dim=1)
    zero = student_logits.new_zeros(())
    if pos_mask.any():
        ce = F.nll_loss(torch.log_softmax(student_logits, dim=1), y, reduction="none")
        positive = (ce * pos_weight)[pos_mask].mean()
    else:
        positive = zero
    if neg_mask.any():
        inverse = torch.clamp(1 - torch.softmax(student_logits, dim=1), min=1e-6, max=1.0)
        nl = F.nll_loss(inverse.log(), 1 - y, reduction="none")
        negative = (nl * neg_weight)[neg_mask].mean()
    else:
        negative = zero
    stats = {
        "cbc_pos": positive.item(),
        "cbc_neg": negative.item(),
        "pos_frac": pos_mask.float().mean().item(),
        "neg_frac": neg_mask.float().mean().item(),
    }
    return positive + negative, stats
