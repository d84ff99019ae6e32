"""The temperature fingerprint: the radius bound predicts how the one-step onset moves with temperature.

Protocol of the official experiments/tempfingerprint/run.py (canonical command in its contract.json;
the paper's "temperature fingerprint" figure, notebooks/fig9.ipynb):

1. For each temperature T in {0.25, 0.5, 1, 2, 4, 8} train the tempfingerprint MLP (64 -> 128 ->
   GELU -> 128 -> GELU -> 10) on the loss CE(z / T, y): Adam, lr 0.01, 120 steps, each batch 256
   training samples drawn without replacement by rng(seed + 17); the init is seeded with the run
   seed, so the temperature is the only difference between the six models.
2. Take the descent direction u = -g/||g|| of the temperature loss on the full training set.
3. The loss sees the logits z / T, whose directional derivatives are a_k / T, so the radius bound
   of the temperature loss is rho_T = pi / (Delta_a / T) = pi T / Delta_a, with Delta_a the
   spread of the raw-logit derivatives (max over the training set, paper's rho_a = pi / Delta_a
   applied to z / T). The scaled step is r_T = tau / rho_T = tau Delta_a / (pi T).
4. Sweep tau over geomspace(1e-4, max(4 rho_T, 2), 80) and record the loss ratio
   CE_T(theta + tau u) / CE_T(theta) on the training set (and the fraction of flipped predictions).
5. The onset is the first grid point where the loss ratio reaches 2 (build_summary's
   loss2_cross_tau / loss2_cross_r_scaled; NaN when it never does). If the radius sets the scale,
   the onsets spread widely in raw tau across temperatures but line up in r_T: the abstract's
   "normalizing by rho_a shrinks the onset-threshold spread from standard deviation 0.992 to 0.164".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ghosts.data import Digits
from ghosts.models import build_model
from ghosts.phase import descent_direction, first_crossing
from ghosts.radius import directional_logit_derivatives, logit_slope_spread, normalised_step

OFFICIAL_TEMPS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class TempConfig:
    temps: Sequence[float] = OFFICIAL_TEMPS
    arch: str = "mlp_gelu"  # tempfingerprint's MLPDigits
    train_steps: int = 120
    lr: float = 0.01  # torch.optim.Adam, default betas
    batch_size: int = 256
    tau_min: float = 1e-4  # the tau grid: geomspace(tau_min, max(r_span * rho_T, tau_floor), tau_points)
    r_span: float = 4.0
    tau_floor: float = 2.0
    tau_points: int = 80
    onset_loss_ratio: float = 2.0  # build_summary: first crossing of loss ratio 2.0


def _check_temperature(temperature: float) -> float:
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")
    return float(temperature)


def temperature_loss(logits: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """CE(z / T, y), the official ce_temp."""
    return F.cross_entropy(logits / _check_temperature(temperature), y)


def temperature_radius(delta_a: float, temperature: float) -> float:
    """rho_T = pi T / Delta_a: the bound rho_a = pi / Delta_a for the logits z / T, whose derivative
    spread is Delta_a / T (official run_single_seed: rho_t = pi * t / Delta_a)."""
    temperature = _check_temperature(temperature)
    if not (math.isfinite(delta_a) and delta_a > 0):
        raise ValueError(f"Delta_a must be finite and > 0, got {delta_a}")
    return math.pi * temperature / delta_a


def scaled_step(tau: float, delta_a: float, temperature: float) -> float:
    """r_T = tau Delta_a / (pi T) = tau / rho_T, the paper's temperature-adjusted normalised step."""
    return normalised_step(tau, temperature_radius(delta_a, temperature))


def tau_grid(rho_t: float, cfg: TempConfig) -> np.ndarray:
    """The official grid: 80 log-spaced steps from 1e-4 to max(4 rho_T, 2)."""
    return np.geomspace(cfg.tau_min, max(cfg.r_span * rho_t, cfg.tau_floor), cfg.tau_points)


def train_at_temperature(data: Digits, temperature: float, seed: int, cfg: TempConfig) -> nn.Module:
    """tempfingerprint/run.py::train_model: seeded init, Adam on CE(z / T), batches by rng(seed + 17)."""
    temperature = _check_temperature(temperature)
    torch.manual_seed(seed)
    model = build_model(cfg.arch).to(data.x_train.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(seed + 17)
    n = data.x_train.shape[0]
    model.train()
    for _ in range(cfg.train_steps):
        idx = torch.from_numpy(rng.choice(n, size=min(cfg.batch_size, n), replace=False))
        opt.zero_grad(set_to_none=True)
        temperature_loss(model(data.x_train[idx]), data.y_train[idx], temperature).backward()
        opt.step()
    model.eval()
    return model


@torch.no_grad()
def loss_ratio_curve(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    temperature: float,
    direction: dict[str, torch.Tensor],
    taus: Sequence[float],
) -> tuple[list[float], list[float]]:
    """CE_T(theta + tau u) / CE_T(theta) and the fraction of changed argmax predictions, per tau
    (official one_step_curve; loss0 floored at 1e-12 as there)."""
    model.eval()
    base = {n: p.detach() for n, p in model.named_parameters()}
    logits0 = model(x)
    pred0 = logits0.argmax(dim=1)
    loss0 = max(float(temperature_loss(logits0, y, temperature)), 1e-12)
    ratios, flips = [], []
    for tau in taus:
        moved = {n: base[n] + float(tau) * direction[n] for n in base}
        logits = functional_call(model, moved, (x,))
        loss = float(temperature_loss(logits, y, temperature))
        ratios.append(loss / loss0 if math.isfinite(loss) else math.inf)
        flips.append(float((logits.argmax(dim=1) != pred0).float().mean()))
    return ratios, flips


def fingerprint_runs(cfg: TempConfig, data: Digits, seed: int, progress=lambda it, **kw: it) -> list[dict]:
    """One trained model per temperature: its Delta_a, rho_T, the loss-ratio sweep and the onsets."""
    if not cfg.temps:
        raise ValueError("temps must not be empty")
    runs = []
    for temperature in progress(list(cfg.temps), desc="temps"):
        model = train_at_temperature(data, temperature, seed, cfg)
        u = descent_direction(model, data.x_train, data.y_train, temperature)
        # Delta_a of the raw logits by one JVP (official: a forward difference with eps 1e-4)
        _, a = directional_logit_derivatives(model, data.x_train, u)
        delta_a = float(logit_slope_spread(a).max())
        rho_t = temperature_radius(delta_a, temperature)
        taus = tau_grid(rho_t, cfg)
        ratios, flips = loss_ratio_curve(model, data.x_train, data.y_train, temperature, u, taus)
        r_grid = [normalised_step(float(t), rho_t) for t in taus]
        onset_tau = first_crossing(taus.tolist(), ratios, cfg.onset_loss_ratio)
        runs.append(
            {
                "temp": float(temperature),
                "delta_a": delta_a,
                "rho_t": rho_t,
                "train_acc": float((model(data.x_train).argmax(1) == data.y_train).float().mean()),
                "tau": taus.tolist(),
                "r_scaled": r_grid,
                "loss_ratio": ratios,
                "flip_frac": flips,
                # first_crossing returns inf when the curve never reaches the threshold (official: NaN)
                "onset_tau": onset_tau,
                "onset_r": onset_tau / rho_t if math.isfinite(onset_tau) else math.inf,
            }
        )
    return runs


def onset_spread(onsets: Sequence[float]) -> float:
    """Population standard deviation of the finite onsets (NaN with fewer than two)."""
    finite = np.array([o for o in onsets if math.isfinite(o)], dtype=float)
    return float(finite.std()) if finite.size >= 2 else math.nan


def onset_cv(onsets: Sequence[float]) -> float:
    """Coefficient of variation std / mean of the finite onsets: the spread without the units."""
    finite = np.array([o for o in onsets if math.isfinite(o)], dtype=float)
    return float(finite.std() / finite.mean()) if finite.size >= 2 else math.nan
