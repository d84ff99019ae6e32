"""The post-hoc calibrators of "Optimizing Calibration by Gaining Aware of Prediction Correctness".

Follows ``src/cal_metrics/temperature_scaling_CA.py`` of the official code (liuyvchi/Correctness-aware-calibration):

* ``AdaptiveTemperature`` (official ``Temperature_adaptive(input_dim=12, feat_dim=5)``): a per-sample
  temperature ``T = clamp(Linear(5 -> 1)(ReLU(Linear(12 -> 5)(a))), 0.1, 10)`` from the 12 transform
  features ``a`` (see ``ca_calibration.features``), calibrated logits ``z / T``. A second branch
  ``sigmoid(Linear(5 -> 1)(ReLU(Linear(12 -> 5)(a))))`` predicts correctness; as in the official code it
  is built but is **not** in the loss (it only receives gradients if a caller adds a loss for it).
* ``ca_loss`` (the correctness-aware loss, paper Eq. 5 with the code's class balancing):
  ``L = sum_i w_i (max_k softmax(z_i / T_i)_k - 1[argmax z_i = y_i])^2 / sum_i w_i`` with
  ``w_i = 1 - acc`` for correctly predicted samples and ``w_i = acc`` for wrong ones, acc being the
  batch accuracy of the uncalibrated predictions.
* ``fit_adaptive``: Adam lr 1e-4, batch 1000, on a held-out in-distribution calibration set; the
  objective is ``"ca"`` or ``"ce"`` (the same calibrator trained with cross-entropy, official
  ``temperature_scaling_CE.py``).
* ``TemperatureScaling``: one global temperature fitted on NLL by L-BFGS (Guo et al. 2017; official
  ``Temperature``, here run to convergence).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

T_MIN, T_MAX = 0.1, 10.0


class AdaptiveTemperature(nn.Module):
    """Per-sample temperature from transform features (12 -> 5 -> 1, clamped to [0.1, 10])."""

    def __init__(self, input_dim: int = 12, feat_dim: int = 5, *, official_init: bool = False):
        super().__init__()
        self.input_dim = input_dim
        self.embed = nn.Sequential(nn.Linear(input_dim, feat_dim), nn.ReLU())
        self.temperature_layer = nn.Linear(feat_dim, 1)
        if not official_init:
            # Deviation (README): start at T ~ 1 (the uncalibrated model). With PyTorch's default init the
            # pre-clamp output is ~U(-1, 1), so for many seeds every sample starts below 0.1, where the
            # clamp passes no gradient and the calibrator never moves from T = 0.1.
            nn.init.constant_(self.temperature_layer.bias, 1.0)
        # correctness branch: present in the official model, unused by its loss
        self.embed2 = nn.Sequential(nn.Linear(input_dim, feat_dim), nn.ReLU())
        self.correctness_layer = nn.Sequential(nn.Linear(feat_dim, 1), nn.Sigmoid())

    def temperature(self, feats: torch.Tensor) -> torch.Tensor:
        """(N,) temperatures; ``torch.clamp`` passes no gradient outside [0.1, 10] (as the official code)."""
        if feats.ndim != 2 or feats.shape[1] != self.input_dim:
            raise ValueError(f"features must be (N, {self.input_dim}), got {tuple(feats.shape)}")
        return torch.clamp(self.temperature_layer(self.embed(feats)), T_MIN, T_MAX).squeeze(-1)

    def correctness(self, feats: torch.Tensor) -> torch.Tensor:
        return self.correctness_layer(self.embed2(feats)).squeeze(-1)

    def forward(self, logits: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        return logits / self.temperature(feats)[:, None]


def class_balanced_weights(correct: torch.Tensor) -> torch.Tensor:
    """w = 1 - acc for correct samples, acc for wrong ones (acc = mean of ``correct``)."""
    acc = correct.float().mean()
    return torch.where(correct, 1.0 - acc, acc)


def ca_loss(cal_logits: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The correctness-aware loss on a batch (see the module docstring).

    Correctness is judged on the *uncalibrated* prediction (a positive temperature does not change
    the argmax). A batch that is all correct or all wrong has every weight 0, where the official code
    divides 0 by 0; we return 0 (no signal) instead of NaN.
    """
    if cal_logits.shape != logits.shape or logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"shapes: cal_logits {tuple(cal_logits.shape)}, logits {tuple(logits.shape)}, labels {tuple(labels.shape)}"
        )
    correct = logits.argmax(1) == labels
    conf = F.softmax(cal_logits, dim=1).max(dim=1).values
    w = class_balanced_weights(correct)
    per_sample = (conf - correct.float()) ** 2  # MSE(conf, correctness), reduction='none'
    denom = w.sum()
    if denom.item() == 0.0:
        return per_sample.sum() * 0.0
    return (w * per_sample).sum() / denom


def fit_adaptive(
    calibrator: AdaptiveTemperature,
    logits: torch.Tensor,
    feats: torch.Tensor,
    labels: torch.Tensor,
    *,
    objective: str = "ca",
    steps: int = 500,
    batch_size: int = 1000,
    lr: float = 1e-4,
    seed: int = 0,
) -> dict:
    """Train ``calibrator`` in place with Adam; returns a small training record.

    ``steps`` counts optimiser steps over shuffled mini-batches (epochs of ``ceil(N / batch_size)``
    steps, the last batch possibly smaller, as a DataLoader with shuffle=True and drop_last=False).
    """
    if objective not in ("ca", "ce"):
        raise ValueError(f"objective must be 'ca' or 'ce', got {objective!r}")
    opt = torch.optim.Adam(calibrator.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(labels)
    per_epoch = math.ceil(n / batch_size)
    losses = []
    t_init = calibrator.temperature(feats).detach()
    calibrator.train()
    step = 0
    while step < steps:
        order = torch.randperm(n, generator=gen)
        for b in range(per_epoch):
            if step >= steps:
                break
            idx = order[b * batch_size : (b + 1) * batch_size]
            z, a, y = logits[idx], feats[idx], labels[idx]
            cal = calibrator(z, a)
            loss = ca_loss(cal, z, y) if objective == "ca" else F.cross_entropy(cal, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
    calibrator.eval()
    with torch.no_grad():
        t_final = calibrator.temperature(feats)
    return {
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "clamped_init": ((t_init <= T_MIN) | (t_init >= T_MAX)).float().mean().item(),
        "clamped_final": ((t_final <= T_MIN) | (t_final >= T_MAX)).float().mean().item(),
        "t_mean": t_final.mean().item(),
    }


class TemperatureScaling(nn.Module):
    """One temperature for all samples (Guo et al. 2017), fitted on NLL."""

    def __init__(self, init: float = 1.5):
        super().__init__()
        self.log_t = nn.Parameter(torch.tensor([math.log(init)]))

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_t.exp()

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.temperature

    def fit(self, logits: torch.Tensor, labels: torch.Tensor, *, max_iter: int = 200):
        """Minimise NLL over log T with L-BFGS (strong-Wolfe line search) to convergence.

        Deviation: the official ``Temperature.set_temperature`` takes one L-BFGS call with lr 0.01 and
        max_iter 50 from T = 1.5, which stops far from the optimum when the best T is not near 1.5
        (on our digits it ends at T = 1.23 when the NLL-optimal T is below 1). TS is a baseline here, so
        it is fitted properly; the log parametrisation keeps T positive.
        """
        opt = torch.optim.LBFGS([self.log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-9, tolerance_change=1e-12)  # fmt: skip

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(self(logits), labels)
            loss.backward()
            return loss

        opt.step(closure)
        return self
