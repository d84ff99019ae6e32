"""The learning-rate spike test: plain Adam, Adam + gradient clipping and the rho-controller.

Protocol of the official experiments/lrspike/run.py::run_one (canonical command in its
contract.json): the lrspike MLP, Adam (AdamCore: betas 0.9/0.999, eps 1e-8), batches of 64 from a
seeded permutation per epoch, 200 steps, the learning rate multiplied by ``spike_mul`` from step
``spike_at`` ON (the spike persists to the end). At every step rho_a is measured with one JVP on
the full training set along Adam's direction, and the test accuracy of the current (pre-update)
model is logged. A non-finite training loss ends the run (the official code pads with NaN).

Gradient clipping is the baseline of experiments/archgrid/run.py::train_step_clip:
clip_grad_norm_(max_norm=1.0) before the Adam update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ghosts.controller import AdamDirection, capped_lr
from ghosts.data import Digits
from ghosts.models import build_model
from ghosts.phase import accuracy
from ghosts.radius import rho_a_along

METHODS = ("plain", "clip", "rho")


@dataclass
class SpikeConfig:
    arch: str = "mlp"
    steps: int = 200
    batch_size: int = 64
    spike_at: int = 50
    spike_mul: float = 1000.0
    clip_norm: float = 1.0


def batch_indices(n: int, batch_size: int, seed: int):
    """Endless seeded permutations cut into batches (official batch_index_iter, seeded seed + 11)."""
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        for i in range(0, n, batch_size):
            yield torch.from_numpy(perm[i : i + batch_size])


def run_spike(method: str, base_lr: float, data: Digits, seed: int, cfg: SpikeConfig) -> dict:
    """One training run; returns per-step curves (loss, test acc, tau, rho_a) and a diverged flag."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    if not base_lr > 0:
        raise ValueError(f"base_lr must be > 0, got {base_lr}")
    torch.manual_seed(seed)
    model = build_model(cfg.arch).to(data.x_train.device)
    opt = AdamDirection(model.parameters())
    batches = batch_indices(data.x_train.shape[0], cfg.batch_size, seed + 11)
    log = {"loss": [], "acc": [], "tau": [], "rho": []}
    diverged = False
    for t in range(cfg.steps):
        idx = next(batches)
        lr_now = base_lr * (cfg.spike_mul if t >= cfg.spike_at else 1.0)
        model.train()
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        if not torch.isfinite(loss):
            diverged = True
            break
        model.zero_grad(set_to_none=True)
        loss.backward()
        if method == "clip":
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        direction, p_norm = opt.propose()
        if p_norm > 0:
            v = {n: d / p_norm for (n, _), d in zip(model.named_parameters(), direction)}
            rho = rho_a_along(model, data.x_train, v)
        else:
            rho = math.inf
        lr_eff = capped_lr(lr_now, p_norm, rho) if method == "rho" else lr_now
        with torch.no_grad():
            model.eval()
            acc = accuracy(model(data.x_test), data.y_test)
        log["loss"].append(float(loss.detach()))
        log["acc"].append(acc)
        log["tau"].append(lr_eff * p_norm)
        log["rho"].append(rho)
        opt.apply(direction, lr_eff)
    # A diverged run stays where it broke: its remaining steps repeat that model's test accuracy
    # (0 when its logits are NaN, since a row without finite logits counts as wrong).
    pad = cfg.steps - len(log["acc"])
    if pad:
        with torch.no_grad():
            model.eval()
            log["acc"] += [accuracy(model(data.x_test), data.y_test)] * pad
    log["loss"] += [math.nan] * pad
    log["tau"] += [math.nan] * pad
    log["rho"] += [math.nan] * pad
    log["diverged"] = diverged
    return log
