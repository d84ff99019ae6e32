"""Plackett-Luce Distillation (PLD), its ListMLE special case, and the Hinton KD baseline.

Notation of the paper (Bassam, Zhu, Bian; arXiv 2506.12542, Secs. 3-4): student logits s, teacher
logits t, label y, C classes.

* Teacher-optimal permutation (Sec. 4.1): pi* = (y, then the other C - 1 classes by descending t).
* Plackett-Luce log-likelihood of step k (Sec. 3.2, Eq. of the PL model):
  log P_k = s_{pi*_k} - log sum_{j >= k} exp(s_{pi*_j}).
* PLD (Sec. 4.2): L = - sum_k alpha_k log P_k with alpha_k = softmax(t / tau_T)_{pi*_k}. It replaces
  CE + KD (no separate CE term, no mixing weight). alpha = (1, 0, ..., 0) gives CE; alpha = 1/C gives
  the paper's "Uniform (ListMLE)" ablation (Sec. 5.2.2).
* KD (Sec. 3.1 and Appendix G): alpha CE(s, y) + (1 - alpha) tau^2 KL(softmax(t/tau) || softmax(s/tau)),
  with the paper's alpha = 0.1, tau = 2 (the main-text setting, Appendix G / Table 5).

The suffix log-sum-exp is a reverse ``logcumsumexp`` (the paper's Appendix C computes the same thing
as a forward ``logcumsumexp`` over the reversed ranking).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xentlab.losses.plackett_luce import plackett_luce_log_probs

__all__ = [
    "KD_ALPHA",
    "KD_TAU",
    "PLD_TAU",
    "kd_loss",
    "listmle_loss",
    "pld_loss",
    "pld_weights",
    "plackett_luce_nll",
    "teacher_optimal_permutation",
]

PLD_TAU = 1.0
"""tau_T of PLD's weights: 1 is the paper's best (ImageNet ablation, Table 6: 0.5 76.06, 1 77.30,
2 76.46, 4 75.22); the CIFAR-100 runs used tau = 4 (Sec. 5.1)."""
KD_ALPHA = 0.1
"""CE weight of the KD baseline (Appendix G: "with alpha = 0.1 and T = 2"; best of the sweep in Table 8)."""
KD_TAU = 2.0
"""KD temperature (Appendix G / Table 5)."""


def _check(student_logits: torch.Tensor, target: torch.Tensor, teacher_logits: torch.Tensor | None = None):
    if student_logits.ndim != 2:
        raise ValueError(f"student logits must be N x C, got shape {tuple(student_logits.shape)}")
    n, c = student_logits.shape
    if c < 2:
        raise ValueError(f"need at least 2 classes, got {c}")
    if teacher_logits is not None and teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher logits {tuple(teacher_logits.shape)} must match student logits {tuple(student_logits.shape)}"
        )
    if target.shape != (n,):
        raise ValueError(f"target must have shape ({n},), got {tuple(target.shape)}")
    if target.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    if n and (int(target.min()) < 0 or int(target.max()) >= c):
        raise ValueError(
            f"target labels must be in [0, {c}), got range [{int(target.min())}, {int(target.max())}]"
        )
    if teacher_logits is not None and not torch.isfinite(teacher_logits).all():
        raise ValueError("teacher logits must be finite")


def _reduce(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    if reduction == "none":
        return per_example
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


@torch.no_grad()
def teacher_optimal_permutation(teacher_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """pi* per row (Sec. 4.1): the label first, then the other classes by descending teacher logit.

    Ties in t are broken by the lower class index first (a stable sort), so the permutation, and hence
    the loss, is a deterministic function of (t, y). The paper does not say how it breaks ties (its
    Appendix C uses an unstable ``torch.sort``); with tied teacher logits the two orders give different
    losses, because the earlier class is chosen against a larger remaining set.
    """
    _check(teacher_logits, target, None)
    if not torch.isfinite(teacher_logits).all():
        raise ValueError("teacher logits must be finite")
    key = teacher_logits.detach().clone()
    key.scatter_(1, target.long().unsqueeze(1), float("inf"))  # the label outranks every finite logit
    return torch.sort(key, dim=1, descending=True, stable=True).indices


def plackett_luce_nll(
    student_logits: torch.Tensor, perm: torch.Tensor, weights: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """- sum_k w_k [ s_{perm_k} - logsumexp_{j >= k} s_{perm_j} ]: a weighted PL negative log-likelihood.

    ``weights`` are per position k of the ranking (N x C), not per class. Each summand is affine plus a
    log-sum-exp in s, so the loss is convex in s for w >= 0 (Appendix A.4).
    """
    if perm.shape != student_logits.shape or weights.shape != student_logits.shape:
        raise ValueError(
            f"perm {tuple(perm.shape)} and weights {tuple(weights.shape)} must match logits {tuple(student_logits.shape)}"
        )
    # log-probability of choosing pi*_k among the classes still left
    log_p = plackett_luce_log_probs(student_logits.gather(1, perm))
    return _reduce(-(weights * log_p).sum(1), reduction)


def pld_weights(teacher_logits: torch.Tensor, perm: torch.Tensor, tau: float = PLD_TAU) -> torch.Tensor:
    """alpha_k = softmax(t / tau_T)_{pi*_k} (Sec. 4.2; the tau_T ablation of Sec. 5.2.2)."""
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    return F.softmax(teacher_logits.detach() / tau, dim=1).gather(1, perm)


def pld_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    target: torch.Tensor,
    tau: float = PLD_TAU,
    reduction: str = "mean",
) -> torch.Tensor:
    """The PLD loss (Sec. 4.2): teacher-confidence-weighted PL likelihood of pi*. No gradient reaches t."""
    _check(student_logits, target, teacher_logits)
    perm = teacher_optimal_permutation(teacher_logits, target)
    return plackett_luce_nll(student_logits, perm, pld_weights(teacher_logits, perm, tau), reduction)


def listmle_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """The paper's "Uniform (ListMLE)" ablation (Sec. 5.2.2): the same pi*, alpha_k = 1 / C."""
    _check(student_logits, target, teacher_logits)
    perm = teacher_optimal_permutation(teacher_logits, target)
    c = student_logits.shape[1]
    weights = torch.full_like(student_logits, 1.0 / c, dtype=student_logits.dtype)
    return plackett_luce_nll(student_logits, perm, weights.detach(), reduction)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float = KD_ALPHA,
    tau: float = KD_TAU,
    reduction: str = "mean",
) -> torch.Tensor:
    """Hinton KD (Sec. 3.1, Appendix G): alpha CE(s, y) + (1 - alpha) tau^2 KL(q_T^tau || p_S^tau).

    The tau^2 factor keeps the soft term's gradient scale independent of tau (Hinton et al. 2015).
    """
    _check(student_logits, target, teacher_logits)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    ce = F.cross_entropy(student_logits, target.long(), reduction="none")
    log_p = F.log_softmax(student_logits / tau, dim=1)
    log_q = F.log_softmax(teacher_logits.detach() / tau, dim=1)
    kl = (log_q.exp() * (log_q - log_p)).sum(1)  # forward KL(teacher || student), per example
    return _reduce(alpha * ce + (1.0 - alpha) * tau**2 * kl, reduction)
