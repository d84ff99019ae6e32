"""The law, its fit and the optimal ratios against hand derivations and a brute-force grid."""

from __future__ import annotations

import numpy as np
import pytest
from multilingual_scaling.law import (
    fit_ratio_law,
    grid_optimum,
    mixture_objective,
    optimal_ratios,
    predict_loss,
)

from xentlab.testing import assert_close


def test_fit_recovers_exact_law():
    # L = 2.5 p^-0.12 exactly -> the log-log fit is exact: K = 2.5, gamma = 0.12, R^2 = 1
    p = np.array([0.1, 0.2, 0.35, 0.6])
    f = fit_ratio_law(p, 2.5 * p**-0.12)
    assert_close(np.array([f.k, f.gamma, f.r2]), np.array([2.5, 0.12, 1.0]), rtol=1e-10, name="K, gamma, r2")
    assert_close(f.predict(1.0), 2.5, rtol=1e-12)


def test_predict_loss_hand_value():
    # 2 * 0.25^-0.5 = 2 * 2 = 4
    assert predict_loss(2.0, 0.5, 0.25) == pytest.approx(4.0, rel=1e-14)
    with pytest.raises(ValueError, match="> 0"):
        predict_loss(1.0, 0.1, 0.0)


def test_optimal_ratios_equal_gamma_closed_form():
    # equal gamma g: mu = c_i g p_i^-(g+1) for all i  =>  p_i proportional to c_i^(1/(g+1))
    c, g = np.array([1.0, 2.0, 5.0]), 0.5
    expect = c ** (1 / (g + 1)) / (c ** (1 / (g + 1))).sum()
    assert_close(optimal_ratios(c, [g] * 3), expect, rtol=1e-9, name="p*")


def test_optimal_ratios_symmetric_is_uniform():
    assert_close(optimal_ratios([3.0] * 4, [0.2] * 4), np.full(4, 0.25), rtol=1e-10)


@pytest.mark.parametrize(
    "c,gamma",
    [([1.0, 2.0, 3.0], [0.05, 0.2, 0.4]), ([0.5, 3.0], [1.0, 0.3]), ([2.9, 3.1, 2.2], [0.06, 0.09, 0.12])],
)
def test_optimal_ratios_match_brute_force_grid(c, gamma):
    p = optimal_ratios(c, gamma)
    assert p.sum() == pytest.approx(1.0, abs=1e-12) and np.all(p > 0)
    grid = grid_optimum(c, gamma, step=0.005)
    assert np.abs(p - grid).max() <= 0.005 + 1e-12  # within one grid step
    assert mixture_objective(p, c, gamma) <= mixture_objective(grid, c, gamma) + 1e-12


def test_optimal_ratios_kkt_equal_marginals():
    # at p*: c_i gamma_i p_i^-(gamma_i + 1) is the same mu for every family
    c, g = np.array([1.3, 0.7, 2.0]), np.array([0.1, 0.3, 0.05])
    p = optimal_ratios(c, g)
    mu = c * g * p ** (-g - 1)
    assert_close(mu, np.full(3, mu.mean()), rtol=1e-9, name="marginals")


@pytest.mark.parametrize(
    "c,gamma", [([1.0, 1.0], [0.1, 0.0]), ([1.0, -1.0], [0.1, 0.1]), ([1.0], [0.1, 0.2])]
)
def test_optimal_ratios_errors(c, gamma):
    with pytest.raises(ValueError):
        optimal_ratios(c, gamma)


def test_fit_errors():
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        fit_ratio_law([0.0, 0.5], [2.0, 1.0])
