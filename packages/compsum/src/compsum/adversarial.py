"""Adversarial training objectives compared in the paper's Sec. 7: PGD-AT, TRADES, ADV-COMP-SUM.

Each ``*_loss(model, x, y, attack)`` builds the training loss of one batch, running its own inner
maximisation with ``xentlab.attacks.pgd_linf`` (the attack settings come in ``attack``):

* PGD-AT (Madry et al. 2018): CE at the PGD maximiser of CE (uniform random start).
* TRADES (Zhang et al. 2019): CE(h(x), y) + beta * KL(p(x) || p(x')), x' maximising the KL
  (start x + 0.001 N(0, 1), as in the TRADES reference code).
* ADV-COMP-SUM (this paper): l_tau(h, x, y) + nu * ||Dbar_h(x', y) - Dbar_h(x, y)||_2, x' maximising
  the smooth term (same start as TRADES, since the term's gradient vanishes at x' = x).

As in the TRADES reference code (trades.py: ``model.eval()`` before the clean target and the PGD loop,
``model.train()`` before the outer loss), the clean target (TRADES' softmax(h(x)), ADV-COMP-SUM's fixed
clean logits) and the inner maximisation are computed with the model in eval mode, the outer loss in
train mode. This only matters for layers such as BatchNorm/Dropout (the ResNet of ``--scale full``);
the cpu-scale MLP has neither, so its numbers do not depend on it. The reference code runs the clean
forward of the outer loss twice (once for CE, once for the KL); we reuse one (same value and gradient;
BatchNorm's running statistics get one update fewer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from compsum.losses import comp_sum_loss, smooth_term
from xentlab.attacks import pgd_linf


@dataclass(frozen=True)
class AttackConfig:
    """The L_inf threat model and PGD settings of the inner maximisation."""

    eps: float = 0.1
    step_size: float = 0.025
    steps: int = 10
    clamp: tuple[float, float] | None = (0.0, 1.0)


@torch.no_grad()
def _clean_forward_eval(model: nn.Module, x) -> torch.Tensor:
    """h(x) in eval mode without a graph: the fixed clean target of the inner maximisation."""
    was_training = model.training
    model.eval()
    logits = model(x)
    model.train(was_training)
    return logits


def _inner(model: nn.Module, x, y, attack: AttackConfig, objective, start: str) -> torch.Tensor:
    was_training = model.training
    model.eval()
    x_adv = pgd_linf(
        model, x, y, eps=attack.eps, step_size=attack.step_size, steps=attack.steps,
        objective=objective, random_start=start, clamp=attack.clamp,
    )  # fmt: skip
    model.train(was_training)
    return x_adv


def pgd_at_loss(model: nn.Module, x, y, attack: AttackConfig) -> torch.Tensor:
    x_adv = _inner(model, x, y, attack, None, "uniform")
    return F.cross_entropy(model(x_adv), y)


def trades_loss(model: nn.Module, x, y, attack: AttackConfig, beta: float) -> torch.Tensor:
    p_clean = F.softmax(_clean_forward_eval(model, x), dim=1)  # eval mode, as trades.py

    def kl(logits_adv, _y):
        return F.kl_div(F.log_softmax(logits_adv, dim=1), p_clean, reduction="sum")

    x_adv = _inner(model, x, y, attack, kl, "normal")
    logits = model(x)
    robust = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(logits, dim=1), reduction="batchmean")
    return F.cross_entropy(logits, y) + beta * robust


def adv_comp_sum_loss(model: nn.Module, x, y, attack: AttackConfig, tau: float, nu: float) -> torch.Tensor:
    logits_clean_fixed = _clean_forward_eval(model, x)  # eval mode, as TRADES' clean target

    def smooth(logits_adv, yy):
        return smooth_term(logits_adv, logits_clean_fixed, yy).sum()

    x_adv = _inner(model, x, y, attack, smooth, "normal")
    logits = model(x)
    return comp_sum_loss(logits, y, tau) + nu * smooth_term(model(x_adv), logits, y).mean()
