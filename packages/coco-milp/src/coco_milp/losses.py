"""Training losses of train.py::train (CoCo: VCL + alpha * rank) and the PS baseline (weighted BCE).

All take `probs` (n,) = sigmoid of the GNN logits, `sols` (Q, n) 0/1 pool solutions and `objs` (Q,)
their objective values; the pool weights are w_q = softmax_q(-obj_q / T) (T = 100 for SC).
"""

from __future__ import annotations

import torch


def pool_weights(objs: torch.Tensor, temperature: float) -> torch.Tensor:
    """w_q = exp(-obj_q / T) / sum_r exp(-obj_r / T) (train.py; computed stably as a softmax)."""
    return torch.softmax(-objs / temperature, dim=0)


def vcl_loss(probs, sols, objs, tau: float = 0.1, temperature: float = 100.0) -> torch.Tensor:
    """Inter-variable contrastive loss: l_j = logit(p_j) / tau (p clamped to [1e-8, 1 - 1e-8]) and
    L = -sum_q w_q log( sum_{j: x^q_j = 1} e^{l_j} / sum_j e^{l_j} ); a solution with no positive
    variable is skipped (train.py). Computed with logsumexp instead of exp/sum/log (same value, no
    overflow: e^{l_j} reaches e^{184} at tau = 0.1)."""
    w = pool_weights(objs, temperature)
    logits = torch.logit(probs.clamp(1e-8, 1 - 1e-8)) / tau
    log_z = torch.logsumexp(logits, dim=0)
    pos = sols.bool()
    masked = torch.where(pos, logits.unsqueeze(0), torch.full_like(sols, -torch.inf, dtype=logits.dtype))
    log_num = torch.logsumexp(masked, dim=1)  # (Q,)
    has_pos = pos.any(1)
    return -(w[has_pos] * (log_num[has_pos] - log_z)).sum()


def rank_loss(probs, sols, objs, margin: float = 0.9, temperature: float = 100.0) -> torch.Tensor:
    """sum_q w_q * mean_{(i,j): x^q_i = 1, x^q_j = 0} max(0, m - (p_i - p_j)); solutions with no positive
    or no negative variable are skipped (train.py)."""
    w = pool_weights(objs, temperature)
    pos = sols.to(probs.dtype)
    neg = 1 - pos
    hinge = torch.clamp(margin - (probs.unsqueeze(1) - probs.unsqueeze(0)), min=0)  # (n, n): i pos, j neg
    # sum over the pairs of solution q = pos_q^T H neg_q: one (Q, n) x (n, n) matmul, no (Q, n, n) mask
    total = ((pos @ hinge) * neg).sum(1)
    n_pairs = pos.sum(1) * neg.sum(1)
    ok = n_pairs > 0
    return (w[ok] * total[ok] / n_pairs[ok]).sum()


def coco_loss(probs, sols, objs, tau=0.1, margin=0.9, alpha=0.01, temperature=100.0) -> torch.Tensor:
    """L = L_VCL + alpha * L_rank (train.py, alpha = 0.01)."""
    return vcl_loss(probs, sols, objs, tau, temperature) + alpha * rank_loss(
        probs, sols, objs, margin, temperature
    )


def weighted_bce(probs, sols, objs, temperature: float = 100.0) -> torch.Tensor:
    """PS (Han et al., 2023): -sum_q w_q sum_j [x^q_j log(p_j + 1e-8) + (1 - x^q_j) log(1 - p_j + 1e-8)]
    (summed over variables, as in the PS code)."""
    w = pool_weights(objs, temperature)
    ll = sols * torch.log(probs + 1e-8) + (1 - sols) * torch.log(1 - probs + 1e-8)
    return -(w * ll.sum(1)).sum()
