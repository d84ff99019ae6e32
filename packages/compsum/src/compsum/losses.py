"""Comp-sum losses and the smooth adversarial comp-sum loss (Mao, Mohri & Zhong, ICML 2023).

Comp-sum family (paper Sec. 2): for scores h(x, .) in R^n and label y,

    l_tau(h, x, y) = Phi^tau( sum_{y' != y} exp(h(x, y') - h(x, y)) ),
    Phi^tau(u) = log(1 + u)                          if tau = 1,
               = ((1 + u)^(1 - tau) - 1) / (1 - tau)  otherwise (tau >= 0).

With p_y = softmax(h)_y we have 1 + u = 1 / p_y, hence the form used for computation

    l_tau = -log p_y                                 (tau = 1)
          = (1 - p_y^(tau - 1)) / (tau - 1)
          = -expm1((tau - 1) * log p_y) / (tau - 1)   (tau != 1),

which only needs the stable ``log_softmax``. Special cases: tau = 0 -> sum-exponential loss
sum_{y'!=y} e^{h_y' - h_y}; tau = 1 -> cross-entropy (logistic); tau in (1, 2) -> generalised
cross-entropy (Zhang & Sabuncu 2018) with q = tau - 1; tau = 2 -> mean absolute error 1 - p_y.

Smooth adversarial comp-sum loss (paper Sec. 6; the exact form could not be checked against the
paper text here, see the package README):

    l~_tau(h, x, y) = l_tau(h, x, y) + nu * sup_{||x' - x||_inf <= gamma} || Dbar_h(x', y) - Dbar_h(x, y) ||_2,
    Dbar_h(x, y) = (h(x, y) - h(x, y'))_{y' in Y},

the sup being approximated by PGD (ADV-COMP-SUM). The smooth term is 1-homogeneous in the scores and 0 for
a constant predictor, so for nu above a data- and eps-dependent critical value the constant predictor
minimises the loss (README, "The smooth term, checked again, and why nu >= 3 collapses").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check(logits: torch.Tensor, target: torch.Tensor, tau: float) -> None:
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    if logits.ndim != 2:
        raise ValueError(f"logits must be [batch, classes], got shape {tuple(logits.shape)}")
    if target.shape != logits.shape[:1] or target.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"target must be int64 of shape [{logits.shape[0]}], got {target.dtype} {tuple(target.shape)}"
        )


def phi_tau(u: torch.Tensor, tau: float) -> torch.Tensor:
    """Phi^tau(u) of the paper, literally (for tests; training uses ``comp_sum_loss``)."""
    if tau == 1:
        return torch.log1p(u)
    return ((1 + u) ** (1 - tau) - 1) / (1 - tau)


def comp_sum_loss(
    logits: torch.Tensor, target: torch.Tensor, tau: float, reduction: str = "mean"
) -> torch.Tensor:
    """The comp-sum loss l_tau of each row (see the module docstring), reduced."""
    _check(logits, target, tau)
    log_p = F.log_softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
    if tau == 1:
        loss = -log_p
    else:
        # (1 - p_y^(tau-1)) / (tau-1); expm1 keeps precision when p_y -> 1 or tau -> 1
        loss = -torch.expm1((tau - 1) * log_p) / (tau - 1)
    return _reduce(loss, reduction)


def score_differences(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dbar_h(x, y) = (h(x, y) - h(x, y'))_{y'}: a [batch, classes] tensor (0 at y' = y)."""
    return logits.gather(1, target[:, None]) - logits


def smooth_term(logits_adv: torch.Tensor, logits_clean: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-row || Dbar_h(x', y) - Dbar_h(x, y) ||_2 (the regulariser of the smooth adversarial loss)."""
    diff = score_differences(logits_adv, target) - score_differences(logits_clean, target)
    # sqrt(sum^2 + tiny): differentiable at x' = x, where the plain norm's gradient is undefined
    return torch.sqrt((diff**2).sum(dim=1) + 1e-12)


def smooth_adv_comp_sum_loss(
    logits_clean: torch.Tensor,
    logits_adv: torch.Tensor,
    target: torch.Tensor,
    tau: float,
    nu: float,
    reduction: str = "mean",
) -> torch.Tensor:
    """l_tau(h, x, y) + nu * ||Dbar_h(x', y) - Dbar_h(x, y)||_2 with x' the (PGD) maximiser."""
    _check(logits_clean, target, tau)
    if nu < 0:
        raise ValueError(f"nu must be >= 0, got {nu}")
    loss = comp_sum_loss(logits_clean, target, tau, "none") + nu * smooth_term(
        logits_adv, logits_clean, target
    )
    return _reduce(loss, reduction)
