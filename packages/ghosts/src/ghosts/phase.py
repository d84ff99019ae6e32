"""The one-step phase transition: take a single step of length tau = r * rho_a and see what breaks.

Protocol (official experiments/phasetransition/run.py and experiments/ghostenvelope/run.py):

1. Train a classifier on digits (AdamW, weight decay 1e-4, batches of 128 drawn without
   replacement, per-architecture lr and steps from ghostenvelope/models.py::ARCHS).
2. At the trained point theta_0 pick unit directions v: the gradient-descent direction
   -g/||g|| of the training loss, and Gaussian random directions.
3. For each v measure rho_a = pi / max_x Delta_a(x; v) with one JVP on an evaluation subset of
   the training set (official EVAL_N = 384 samples drawn with rng 1234), and for every r on a grid
   evaluate theta_0 + r * rho_a * v: the loss ratio L(theta)/L(theta_0) on the same subset and
   the test accuracy.
4. The paper's figure plots the test accuracy retained, acc(theta)/acc(theta_0) (README teaser:
   "test accuracy retained after one gradient step"). The official loss-based onset is the first r
   where the median random-direction loss-ratio curve reaches 1.1
   (phasetransition/run.py::first_crossing(threshold=1.1) on rand_median).

The model is evaluated in eval mode throughout (BatchNorm on running statistics), so every
quantity is a deterministic function of theta.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ghosts.data import Digits
from ghosts.models import build_model
from ghosts.radius import rho_a_along, unit_direction

# (lr, steps) from ghostenvelope/models.py::ARCHS for Linear, MLP(+LN), CNN and TinyTfm; the
# lrspike MLP takes the MLP's entry and CNN+BN the CNN's.
OFFICIAL_TRAINING = {
    "linear": (6e-3, 500),
    "mlp": (2.5e-3, 520),
    "mlp_ln": (2.5e-3, 520),
    "cnn": (2.5e-3, 560),
    "cnn_bn": (2.5e-3, 560),
    "transformer": (2e-3, 600),
}


@dataclass
class PhaseConfig:
    archs: Sequence[str] = tuple(OFFICIAL_TRAINING)
    steps_scale: float = 1.0  # multiplies each architecture's official number of training steps
    batch_size: int = 128
    weight_decay: float = 1e-4
    random_dirs: int = 4  # Gaussian directions per architecture (official: 20)
    eval_n: int = 384  # training samples for rho_a, the gradient and the loss ratio (official EVAL_N)
    r_grid: Sequence[float] = field(default_factory=lambda: default_r_grid())
    onset_loss_ratio: float = 1.1  # official first_crossing threshold
    acc_collapse: float = 0.5  # accuracy retained below this counts as collapsed


def default_r_grid(r_min: float = 1e-2, r_max: float = 30.0, n: int = 31) -> list[float]:
    """A log grid over [r_min, r_max] refined around r = 1 (official: logspace(-3, log10 35, 42))."""
    near_one = [0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0, 1.01, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0]
    grid = np.unique(np.concatenate([np.geomspace(r_min, r_max, n), near_one]))
    return [float(r) for r in grid]


def train_classifier(
    arch: str, data: Digits, seed: int, lr: float, steps: int, batch_size: int, weight_decay: float
) -> nn.Module:
    """ghostenvelope/run.py::runArch: AdamW, random batches without replacement, seeded init."""
    torch.manual_seed(seed)
    model = build_model(arch).to(data.x_train.device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    n = data.x_train.shape[0]
    model.train()
    for _ in range(steps):
        idx = torch.from_numpy(rng.choice(n, size=min(batch_size, n), replace=False))
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()
    model.eval()
    return model


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose logits are finite and whose argmax is the label (a NaN model scores 0)."""
    ok = torch.isfinite(logits).all(dim=1) & (logits.argmax(dim=1) == y)
    return float(ok.float().mean())


def descent_direction(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, temperature: float = 1.0
) -> dict[str, torch.Tensor]:
    """-g/||g|| for the mean cross-entropy of the logits / ``temperature`` on (x, y), the model in
    eval mode (tempfingerprint/run.py::grad_direction uses the temperature loss; z / 1.0 == z exactly)."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be finite and > 0, got {temperature}")
    model.eval()
    params = dict(model.named_parameters())
    loss = F.cross_entropy(model(x) / temperature, y)
    grads = torch.autograd.grad(loss, list(params.values()))
    v, _ = unit_direction({n: -g for n, g in zip(params, grads)})
    return v


def random_direction(model: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A Gaussian direction over all parameters, normalised globally (phasetransition/run.py)."""
    raw = {
        n: torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device)
        for n, p in model.named_parameters()
    }
    v, _ = unit_direction(raw)
    return v


def eval_subset(data: Digits, n: int, seed: int = 1234) -> tuple[torch.Tensor, torch.Tensor]:
    """The official evaluation subset: n training samples drawn without replacement by rng(1234)."""
    idx = np.random.default_rng(seed).choice(
        data.x_train.shape[0], size=min(n, data.x_train.shape[0]), replace=False
    )
    idx_t = torch.from_numpy(idx).to(data.x_train.device)
    return data.x_train[idx_t], data.y_train[idx_t]


@torch.no_grad()
def sweep(
    model: nn.Module,
    x_eval: torch.Tensor,
    y_eval: torch.Tensor,
    data: Digits,
    v: dict[str, torch.Tensor],
    rho: float,
    r_grid: Sequence[float],
) -> tuple[list[float], list[float]]:
    """Loss ratio on (x_eval, y_eval) and test accuracy retained at theta_0 + r * rho * v for each r."""
    model.eval()
    base = {n: p.detach() for n, p in model.named_parameters()}
    loss0 = float(F.cross_entropy(model(x_eval), y_eval))
    acc0 = accuracy(model(data.x_test), data.y_test)
    loss_ratio, acc_retained = [], []
    for r in r_grid:
        tau = r * rho
        moved = {n: base[n] + tau * v[n] for n in base}
        loss = float(F.cross_entropy(functional_call(model, moved, (x_eval,)), y_eval))
        acc = accuracy(functional_call(model, moved, (data.x_test,)), data.y_test)
        loss_ratio.append(loss / loss0 if math.isfinite(loss) else math.inf)
        acc_retained.append(acc / acc0 if acc0 > 0 else 0.0)
    return loss_ratio, acc_retained


def first_crossing(
    r_grid: Sequence[float], values: Sequence[float], threshold: float, below: bool = False
) -> float:
    """The first r where values >= threshold (or < threshold with ``below``); inf if never."""
    for r, val in zip(r_grid, values):
        if (val < threshold) if below else (val >= threshold):
            return float(r)
    return math.inf


def phase_runs(cfg: PhaseConfig, data: Digits, seed: int, progress=lambda it, **kw: it) -> list[dict]:
    """Train every architecture once and sweep r along the descent and the random directions."""
    runs = []
    x_eval, y_eval = eval_subset(data, cfg.eval_n)
    for arch_index, arch in enumerate(progress(list(cfg.archs), desc="archs")):
        lr, steps = OFFICIAL_TRAINING[arch]
        model = train_classifier(
            arch, data, seed, lr, max(1, round(steps * cfg.steps_scale)), cfg.batch_size, cfg.weight_decay
        )
        acc0 = accuracy(model(data.x_test), data.y_test)
        gen = torch.Generator().manual_seed(10_000 * seed + arch_index)
        directions = [("grad", descent_direction(model, x_eval, y_eval))]
        directions += [(f"rand{i}", random_direction(model, gen)) for i in range(cfg.random_dirs)]
        for kind, v in directions:
            rho = rho_a_along(model, x_eval, v)
            loss_ratio, acc_retained = sweep(model, x_eval, y_eval, data, v, rho, cfg.r_grid)
            below = [i for i, r in enumerate(cfg.r_grid) if r < 1.0]
            runs.append(
                {
                    "arch": arch,
                    "direction": kind,
                    "acc0": acc0,
                    "rho_a": rho,
                    "loss_ratio": loss_ratio,
                    "acc_retained": acc_retained,
                    "onset_loss": first_crossing(cfg.r_grid, loss_ratio, cfg.onset_loss_ratio),
                    "onset_acc": first_crossing(cfg.r_grid, acc_retained, cfg.acc_collapse, below=True),
                    "max_loss_ratio_below1": max(loss_ratio[i] for i in below),
                    "min_acc_retained_below1": min(acc_retained[i] for i in below),
                }
            )
    return runs


def random_median_onset(runs: Sequence[dict], r_grid: Sequence[float], threshold: float) -> float:
    """The official loss-based onset: first r where the median over random directions of the
    loss-ratio curves reaches ``threshold`` (phasetransition/run.py, onset_rand)."""
    curves = np.array([run["loss_ratio"] for run in runs if run["direction"] != "grad"], dtype=float)
    if curves.size == 0:
        return math.nan
    return first_crossing(r_grid, np.median(curves, axis=0).tolist(), threshold)
