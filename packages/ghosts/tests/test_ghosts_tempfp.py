"""The temperature fingerprint: rho_T against hand derivations, the temperature loss, determinism, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ghosts.data import load_digits
from ghosts.phase import descent_direction
from ghosts.radius import directional_logit_derivatives, rho_a
from ghosts.tempfp import (
    TempConfig,
    fingerprint_runs,
    loss_ratio_curve,
    onset_cv,
    onset_spread,
    scaled_step,
    tau_grid,
    temperature_loss,
    temperature_radius,
)
from torch import nn

from xentlab.testing import assert_close


@pytest.fixture(scope="module")
def digits():
    return load_digits(split_seed=0, test_size=0.2)


def test_temperature_radius_hand_derived():
    # rho_T = pi T / Delta_a: Delta_a = pi, T = 2 -> rho_T = 2; r_T = tau / rho_T = 0.5 at tau = 1
    assert temperature_radius(math.pi, 2.0) == pytest.approx(2.0, rel=1e-15)
    assert scaled_step(1.0, math.pi, 2.0) == pytest.approx(0.5, rel=1e-15)
    # T = 1 is the plain bound pi / Delta_a
    assert temperature_radius(4.0, 1.0) == pytest.approx(math.pi / 4.0, rel=1e-15)


def test_temperature_radius_is_the_bound_of_the_scaled_logits_linear_model():
    # Linear logits z = W x along the unit direction V (||V||_F = 1) have a_k = (V x)_k. Take
    # x = e_0 and V = (e_0 e_0^T - e_1 e_0^T) / sqrt(2): a = (1, -1, 0, ...) / sqrt(2), so
    # Delta_a = sqrt(2) and rho_a = pi / sqrt(2). The temperature loss sees z / T, whose slopes are
    # a / T, so its bound is pi T / sqrt(2): at T = 4, 4 pi / sqrt(2) = 2 sqrt(2) pi.
    model = nn.Linear(3, 3, bias=False).double()
    v = torch.zeros(3, 3, dtype=torch.float64)
    v[0, 0], v[1, 0] = 1 / math.sqrt(2), -1 / math.sqrt(2)
    x = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    _, a = directional_logit_derivatives(model, x, {"weight": v})
    delta_a = float(a.max() - a.min())
    assert delta_a == pytest.approx(math.sqrt(2), rel=1e-14)
    assert temperature_radius(delta_a, 4.0) == pytest.approx(2 * math.sqrt(2) * math.pi, rel=1e-14)
    assert temperature_radius(delta_a, 4.0) == pytest.approx(rho_a(a / 4.0), rel=1e-14)


def test_temperature_loss_matches_a_float64_reference():
    # CE(z / T, y) = log sum_k exp(z_k / T) - z_y / T; two classes z = (0, 2), y = 0, T = 2:
    # log(1 + e) - 0 = 1.3132616875182228
    logits = torch.tensor([[0.0, 2.0]], dtype=torch.float64)
    y = torch.tensor([0])
    assert float(temperature_loss(logits, y, 2.0)) == pytest.approx(math.log(1 + math.e), rel=1e-15)
    assert float(temperature_loss(logits, y, 1.0)) == float(F.cross_entropy(logits, y))


def test_temperature_one_descent_direction_equals_the_plain_one(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 10))
    x, y = digits.x_train[:64], digits.y_train[:64]
    plain = descent_direction(model, x, y)
    at_one = descent_direction(model, x, y, temperature=1.0)
    assert all(torch.equal(plain[k], at_one[k]) for k in plain)  # z / 1.0 == z bit for bit
    hot = descent_direction(model, x, y, temperature=4.0)
    assert not all(torch.allclose(plain[k], hot[k]) for k in plain)


def test_loss_ratio_curve_starts_at_one_and_counts_flips(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 10))
    x, y = digits.x_train[:128], digits.y_train[:128]
    u = descent_direction(model, x, y, temperature=2.0)
    ratios, flips = loss_ratio_curve(model, x, y, 2.0, u, [0.0, 1e-3, 100.0])
    assert ratios[0] == 1.0 and flips[0] == 0.0
    assert ratios[1] < 1.0  # a tiny descent step lowers the loss
    assert 0.0 <= flips[2] <= 1.0


def test_tau_grid_is_the_official_geomspace():
    cfg = TempConfig()
    grid = tau_grid(0.1, cfg)  # max(4 * 0.1, 2) = 2
    assert len(grid) == 80 and grid[0] == pytest.approx(1e-4) and grid[-1] == pytest.approx(2.0)
    assert tau_grid(1.0, cfg)[-1] == pytest.approx(4.0)


def test_fingerprint_runs_are_deterministic_and_consistent(digits):
    cfg = TempConfig(temps=[0.5, 2.0], train_steps=5, tau_points=12)
    first = fingerprint_runs(cfg, digits, seed=2)
    assert first == fingerprint_runs(cfg, digits, seed=2)
    for run in first:
        assert run["rho_t"] == pytest.approx(math.pi * run["temp"] / run["delta_a"], rel=1e-15)
        assert_close(
            np.array(run["r_scaled"]),
            np.array(run["tau"]) * run["delta_a"] / (math.pi * run["temp"]),
            rtol=1e-12,
            atol=0,
            name="r_T = tau Delta_a / (pi T)",
        )
        if math.isfinite(run["onset_tau"]):
            i = run["tau"].index(run["onset_tau"])
            assert run["loss_ratio"][i] >= 2.0 and all(r < 2.0 for r in run["loss_ratio"][:i])


def test_onset_spread_and_cv():
    assert onset_spread([1.0, 3.0]) == pytest.approx(1.0)  # population std of {1, 3}
    assert onset_cv([1.0, 3.0]) == pytest.approx(0.5)
    assert onset_spread([1.0, 3.0, math.inf]) == pytest.approx(1.0)  # a missing onset is left out
    assert math.isnan(onset_spread([1.0, math.inf]))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: temperature_radius(1.0, 0.0), "temperature must be finite and > 0"),
        (lambda: temperature_radius(1.0, math.nan), "temperature must be finite and > 0"),
        (lambda: temperature_radius(0.0, 1.0), "Delta_a must be finite and > 0"),
        (lambda: temperature_loss(torch.zeros(1, 2), torch.tensor([0]), -1.0), "temperature"),
        (lambda: scaled_step(-1.0, 1.0, 1.0), "step length tau"),
    ],
)
def test_bad_input_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_empty_temperatures_is_a_clear_error(digits):
    with pytest.raises(ValueError, match="temps must not be empty"):
        fingerprint_runs(TempConfig(temps=[]), digits, seed=0)
