"""Preference losses on sequence log-probabilities: DPO (sigmoid), IPO, and NPO for unlearning.

Inputs are per-pair sequence log-likelihoods of the response tokens, as ``xentlab.lm.train.
sequence_logprob`` returns them: ``policy_chosen`` = log pi_theta(y_w | x), ``policy_rejected`` =
log pi_theta(y_l | x), and the same under the frozen reference model pi_ref (usually the SFT model,
whose log-probs can be precomputed once since it never changes).

DPO (Rafailov et al., 2023, Eq. 7):

    h = (log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x))
    L_DPO = -log sigmoid(beta * h)

(trl's ``loss_type="sigmoid"``; trl 1.16 applies no label smoothing to it, nor does this one).

IPO (Azar et al., 2023, Eq. 17): L_IPO = (h - 1 / (2 beta))^2, here on the summed log-ratios
(``normalize_by`` divides h by each pair's response lengths first, as trl does for IPO).

NPO (Zhang et al., 2024, "Negative Preference Optimization", Eq. 3) is DPO with only a rejected
response, the forget sample, and a 2 / beta scale:

    L_NPO = -(2 / beta) E[ log sigmoid(-beta log(pi(y|x) / pi_ref(y|x))) ]

written with the per-sequence summed NLLs, log(pi / pi_ref) = NLL_ref - NLL, as the official code does
(``neg_log_ratios = loss_current - loss_ref``).

The implicit rewards beta * (log pi - log pi_ref) of the chosen and rejected responses are
returned for logging (DPO Sec. 5: the reward accuracy and margin).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class PreferenceLoss:
    """Per-pair losses (P,) and the detached implicit rewards of chosen / rejected responses."""

    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor

    @property
    def loss(self) -> torch.Tensor:
        """The batch mean (what is back-propagated)."""
        return self.losses.mean()

    def stats(self) -> dict[str, float]:
        margin = self.chosen_rewards - self.rejected_rewards
        return {
            "pref_loss": float(self.losses.detach().mean()),
            "reward_acc": float((margin > 0).float().mean()),
            "reward_margin": float(margin.mean()),
        }


def _check(*tensors: torch.Tensor) -> None:
    shape = tensors[0].shape
    if tensors[0].ndim != 1:
        raise ValueError(f"log-probs must be 1-d (one value per pair), got shape {tuple(shape)}")
    for t in tensors[1:]:
        if t.shape != shape:
            raise ValueError(
                f"all log-prob tensors must have the same shape, got {tuple(shape)} and {tuple(t.shape)}"
            )


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    *,
    beta: float = 0.1,
) -> PreferenceLoss:
    """The DPO loss -log sigmoid(beta h) of each pair (DPO Eq. 7)."""
    _check(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    chosen_logratio = policy_chosen - ref_chosen
    rejected_logratio = policy_rejected - ref_rejected
    h = chosen_logratio - rejected_logratio
    losses = -F.logsigmoid(beta * h)
    return PreferenceLoss(losses, beta * chosen_logratio.detach(), beta * rejected_logratio.detach())


def ipo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    *,
    beta: float = 0.1,
    chosen_lengths: torch.Tensor | None = None,
    rejected_lengths: torch.Tensor | None = None,
) -> PreferenceLoss:
    """The IPO loss (h - 1/(2 beta))^2 of each pair; with lengths, each log-ratio is per token."""
    _check(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    chosen_logratio = policy_chosen - ref_chosen
    rejected_logratio = policy_rejected - ref_rejected
    if (chosen_lengths is None) != (rejected_lengths is None):
        raise ValueError("give both chosen_lengths and rejected_lengths, or neither")
    if chosen_lengths is not None:
        chosen_logratio = chosen_logratio / chosen_lengths.clamp(min=1)
        rejected_logratio = rejected_logratio / rejected_lengths.clamp(min=1)
    h = chosen_logratio - rejected_logratio
    losses = (h - 1.0 / (2.0 * beta)) ** 2
    return PreferenceLoss(losses, beta * chosen_logratio.detach(), beta * rejected_logratio.detach())


def npo_loss(nll: torch.Tensor, nll_ref: torch.Tensor, *, beta: float) -> torch.Tensor:
    """The batch-mean NPO loss from per-sequence summed NLLs of the forget responses under the policy
    (``nll``) and the frozen reference (``nll_ref``); see the module docstring (NPO Eq. 3)."""
    _check(nll, nll_ref)
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    return -F.logsigmoid(beta * (nll - nll_ref)).mean() * 2 / beta
