"""Pins of the official PACS formulas and hyperparameters (second fidelity audit).

Official code: ritzz-ai/PACS at 4c987b4, ``src/pacs/pacs_core_algos.py`` (``compute_reward``,
``compute_rloo_outcome_advantage``, ``compute_weight``, ``compute_pacs_loss``),
``src/pacs/pacs_actor.py`` (no gradient clipping), ``scripts/pacs/pacs_beta_1.0.sh`` and
``scripts/baseline/grpo.sh`` (hyperparameters). Every expected value below is derived by hand in
float64; the derivation is in the comments.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from pacs.loss import PACSConfig, class_weights, implicit_reward, pacs_loss, rloo_advantage

from xentlab.testing import load_reproduce

F64 = torch.float64


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _two_groups():
    """Two groups of n = 4, three positions (0: prompt, 1-2: response). Each row's summed log-ratio
    is d = (d1 + d2) with d2 only where the row has a second response token; padding holds garbage."""
    d1 = torch.tensor([0.1, -0.2, 0.1, 0.0, 0.05, 0.05, -0.1, 0.0], dtype=F64)
    d2 = torch.tensor([0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=F64)
    mask = torch.tensor([[0, 1, 1]] * 4 + [[0, 1, 0]] * 4, dtype=F64)
    mask[2, 2] = 1.0  # row 2 has two response tokens (d = 0.1 + 0.2)
    old = -torch.rand(8, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    logp = old.clone()
    logp[:, 1] += d1
    logp[:, 2] += d2
    logp = torch.where(mask.bool() | (torch.arange(3) == 0), logp, torch.full_like(logp, 7.0))
    return logp, old, mask


def test_official_rloo_weights_and_bce_by_hand_float64():
    logp, old, mask = _two_groups()
    R = torch.tensor([1, 0, 1, 1, 0, 0, 0, 0], dtype=F64)
    # compute_reward "1" with beta = 2: r = 2 * sum_t (log pi - log pi_old)
    #   group 1: d = [0.1, -0.2, 0.3, 0.0] -> r = [0.2, -0.4, 0.6, 0.0], S = 0.4
    #   group 2: d = [0.05, 0.05, -0.1, 0.0] -> r = [0.1, 0.1, -0.2, 0.0], S = 0.0
    r = implicit_reward(logp, old, mask, beta=2.0)
    torch.testing.assert_close(r, torch.tensor([0.2, -0.4, 0.6, 0.0, 0.1, 0.1, -0.2, 0.0], dtype=F64))
    # compute_rloo_outcome_advantage: psi_i = r_i - (S - r_i) / (n - 1) = (n r_i - S) / (n - 1)
    #   group 1: (4 r - 0.4) / 3 = [2/15, -2/3, 2/3, -2/15]; group 2: 4 r / 3 = [2/15, 2/15, -4/15, 0]
    psi = [2 / 15, -2 / 3, 2 / 3, -2 / 15, 2 / 15, 2 / 15, -4 / 15, 0.0]
    torch.testing.assert_close(rloo_advantage(r, 4), torch.tensor(psi, dtype=F64))
    # compute_weight "question": group 1 has 3 positives, 1 negative -> sklearn 'balanced'
    #   w_pos = 4 / (2 * 3) = 2/3, w_neg = 4 / (2 * 1) = 2; group 2 has one class only -> w = 1
    #   (float32, as the official ``torch.ones_like(labels, dtype=torch.float32)``)
    w = [2 / 3, 2.0, 2 / 3, 2 / 3, 1.0, 1.0, 1.0, 1.0]
    torch.testing.assert_close(class_weights(R, 4), torch.tensor(w, dtype=torch.float32))
    # BCEWithLogitsLoss(weight=w)(psi, R): mean over all 8 responses of w [softplus(psi) - R psi]
    expected = sum(wi * (_softplus(p) - y * p) for wi, p, y in zip(w, psi, R.tolist())) / 8
    loss, _ = pacs_loss(logp, old, mask, R, 4, PACSConfig(beta=2.0))
    assert loss.dtype == F64
    assert loss.item() == pytest.approx(expected, rel=1e-7)  # the float32 weights' rounding


def test_official_reward_method_2_and_naive_estimator_by_hand_float64():
    # compute_reward "2": beta * sum_t log pi / response_len. The official sum runs over the padded
    # width; under verl's remove-padding path the padded log-probs are 0, which the mask reproduces.
    logp = torch.tensor([[0.0, -1.0, -3.0], [0.0, -2.0, 9.0]], dtype=F64)
    mask = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]], dtype=F64)
    # row 0: (-1 - 3) / 2 = -2; row 1: -2 / 1 = -2 (the 9.0 is padding); beta 1.5 -> -3, -3
    r = implicit_reward(logp, logp.detach(), mask, beta=1.5, reward_method="2")
    torch.testing.assert_close(r, torch.tensor([-3.0, -3.0], dtype=F64))
    # adv_estimator "naive" (compute_naive_advantage): psi = r; no weights: plain BCE mean
    R = torch.tensor([1.0, 0.0], dtype=F64)
    cfg = PACSConfig(beta=1.5, reward_method="2", adv_estimator="naive", use_weight=False)
    loss, _ = pacs_loss(logp, logp.detach(), mask, R, 2, cfg)
    expected = ((_softplus(-3.0) + 3.0) + _softplus(-3.0)) / 2  # softplus(psi) - R psi per row
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_official_only_positive_and_only_negative_weights():
    # compute_weight: "only_positive" keeps label-1 rows (w 1) and zeroes the rest; "only_negative" the reverse
    R = torch.tensor([1.0, 0.0, 0.0, 1.0])
    torch.testing.assert_close(class_weights(R, 4, "only_positive"), torch.tensor([1.0, 0.0, 0.0, 1.0]))
    torch.testing.assert_close(class_weights(R, 4, "only_negative"), torch.tensor([0.0, 1.0, 1.0, 0.0]))


def test_reproduce_keeps_the_official_hyperparameters():
    """scripts/pacs/pacs_beta_1.0.sh and scripts/baseline/grpo.sh (with verl's defaults they rely on)."""
    from pacs.train import RLConfig

    rep = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    # PACS: beta 1, RLOO, balanced weights (PACSConfig defaults), the actor never clips
    assert rep.METHOD["pacs"] == {"method": "pacs", "beta": 1.0, "adv_estimator": "rloo", "grad_clip": None}
    assert PACSConfig() == PACSConfig(beta=1.0, reward_method="1", adv_estimator="rloo", use_weight=True,
                                      weight_mode="question")  # fmt: skip
    # GRPO: clip 0.2, no KL, verl's grad_clip 1.0
    assert rep.METHOD["grpo"]["epsilon"] == 0.2 and rep.METHOD["grpo"]["grad_clip"] == 1.0
    # rollout n = 8; 1,024-prompt train batch / 256-prompt PPO mini-batch = 4 optimiser steps; T = 1
    cpu = rep.RL["cpu"]
    assert cpu["n"] == 8 and cpu["minibatches"] == 4 and cpu["temperature"] == 1.0
    # verl's actor AdamW: weight decay 0.01, constant lr
    assert RLConfig().weight_decay == 0.01
    full = rep.FULL
    assert (full["lr"], full["beta"], full["num_generations"], full["steps"]) == (1e-6, 1.0, 8, 300)
    assert (full["max_prompt_length"], full["max_completion_length"]) == (512, 4096)
