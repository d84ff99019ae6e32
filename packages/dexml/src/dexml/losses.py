"""The multi-label retrieval losses of DEXML (official code: losses.py, SimLoss.compute_loss).

Every loss takes ``sim`` = (B, L) scores s(x, l) = cos(E(x), E(l)) / tau over ALL labels (every label is
a negative: the "dist-de-all" setting) and ``targets`` = (B, L) bool relevance (binary, so the official
``loss_weighted`` option is a no-op and is not reproduced). Reductions follow the official code exactly:

* softmax (multi-positive InfoNCE, Sec. 4 eq. for L_SM):  -(1/B) sum_i sum_{p in P_i} log softmax(s_i)_p,
  summed (not averaged) over positives, all positives inside the one denominator.
* bce: (1/(B L)) sum_{i,l} [softplus(s_il) - y_il s_il]  (log(1 + e^s) = logaddexp(s, 0)).
* decoupled softmax (Sec. 4, L_DSM): every other positive is removed from the denominator,
  -(1/B) sum_i (1/|P_i|) sum_{p in P_i} log( e^{s_p} / (e^{s_p} + sum_{l not in P_i} e^{s_l}) ).
  The code removes positives by overwriting their score with -100 (not -inf); we do the same.
* decoupled softmax with ``loss_sample`` (the official default): one positive per row is sampled
  proportionally to relevance (uniformly here), the other positives get -100, and DS is applied with
  the sampled positive only (|P| = 1).
* softmax with ``loss_sample`` (the official EURLex-4K softmax config, ``dist-de-all_softmax.yaml``):
  one positive per row is sampled the same way, and the softmax loss is taken on it alone,
  -(1/B) sum_i log softmax(s_i)_{p_i}. Unlike DS, the code masks the non-sampled positives only for
  ``topk`` / ``decoupled-softmax``, so here they stay in the denominator as negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MASK_VALUE = -100.0
"""the official code's stand-in for -inf when removing a positive from a denominator"""


def _check(sim: torch.Tensor, targets: torch.Tensor) -> None:
    if sim.ndim != 2 or sim.shape != targets.shape:
        raise ValueError(
            f"sim and targets must both be (B, L); got {tuple(sim.shape)} and {tuple(targets.shape)}"
        )
    if targets.dtype != torch.bool:
        raise ValueError(f"targets must be a bool relevance matrix, got {targets.dtype}")


def softmax_loss(sim: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Multi-positive softmax (InfoNCE with all positives in the denominator), sum over positives / B."""
    _check(sim, targets)
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    return -(log_prob * targets).sum() / sim.shape[0]


def bce_loss(sim: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """One-vs-all binary cross-entropy on the scaled cosines, averaged over all B * L entries."""
    _check(sim, targets)
    return (F.softplus(sim).sum() - sim[targets].sum()) / sim.numel()


def decoupled_softmax_loss(sim: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Decoupled softmax: each positive competes only with the negatives, averaged 1/|P_i| then over B."""
    _check(sim, targets)
    log_neg = torch.logsumexp(sim.masked_fill(targets, MASK_VALUE), dim=1, keepdim=True)  # (B, 1)
    log_prob = sim - torch.logaddexp(log_neg, sim)  # log( e^{s_p} / (e^{s_p} + sum_neg e^{s_l}) )
    num_pos = targets.sum(dim=1, keepdim=True).clamp(min=1)  # rows without positives contribute 0
    return -(log_prob * targets / num_pos).sum() / sim.shape[0]


def sample_one_positive(targets: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A (B, L) bool with exactly one positive per row, drawn uniformly from that row's positives."""
    if not bool(targets.any(dim=1).all()):
        raise ValueError("every row needs at least one positive to sample from")
    pick = torch.multinomial(targets.double(), 1, generator=generator)  # (B, 1)
    return torch.zeros_like(targets).scatter_(1, pick, True)


def decoupled_softmax_sampled_loss(
    sim: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """DS with the official ``loss_sample``: one sampled positive, the other positives masked to -100."""
    _check(sim, targets)
    sampled = sample_one_positive(targets, generator)
    masked = sim.masked_fill(targets & ~sampled, MASK_VALUE)
    return decoupled_softmax_loss(masked, sampled)


def softmax_sampled_loss(
    sim: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Softmax with the official ``loss_sample``: one sampled positive per row, the other positives are
    left in the denominator (unmasked)."""
    _check(sim, targets)
    return softmax_loss(sim, sample_one_positive(targets, generator))


LOSSES = {
    "softmax": softmax_loss,
    "bce": bce_loss,
    "ds": decoupled_softmax_loss,
    "ds_sample": decoupled_softmax_sampled_loss,
    "softmax_sample": softmax_sampled_loss,
}
SAMPLED = {"ds_sample", "softmax_sample"}
"""losses that draw a positive per row from the generator"""


def compute_loss(
    name: str, sim: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {name!r}")
    if name in SAMPLED:
        return LOSSES[name](sim, targets, generator)
    return LOSSES[name](sim, targets)
