"""The leakage bounds against hand derivations and a literal transcription of conbo 0.1.1's formulas."""

import numpy as np
import pytest
from prob_unlearn.bounds import (
    binomial_bounds,
    cdf_bounds,
    dkw_epsilon,
    ed_score,
    expectation_bounds,
    std_bounds,
    survival_bounds,
    variance_bounds,
)


def _conbo_variance_loop(samples, alpha, steps=100):
    """conbo.variance_bounds for one 1-d sample, written as explicit loops over the grid cells."""
    n = len(samples)
    eps = np.sqrt(np.log(2 / alpha) / (2 * n))
    t = np.linspace(0, 1, steps)
    cdf = np.array([(samples <= x).mean() for x in t])
    lo, hi = np.maximum(cdf - eps, 0), np.minimum(cdf + eps, 1)
    h = t[1] - t[0]
    mu_lo = 1 - sum(hi[i + 1] * h for i in range(steps - 1))
    mu_hi = 1 - sum(lo[i] * h for i in range(steps - 1))
    emax, emin = [], []
    for i in range(steps - 1):
        c = [(t[i] - mu_lo) ** 2, (t[i] - mu_hi) ** 2, (t[i + 1] - mu_lo) ** 2, (t[i + 1] - mu_hi) ** 2]
        emax.append(max(c))
        emin.append(min(c))
    up = emax[-1] - emax[0] * lo[0]
    dn = emin[-1] - emin[0] * hi[0]
    for i in range(1, steps - 1):
        d = emax[i - 1] - emax[i]
        up += (cdf[i] + (eps if d > 0 else -eps)) * d
        d = emin[i - 1] - emin[i]
        dn += (cdf[i] - (eps if d > 0 else -eps)) * d
    return mu_lo, mu_hi, max(dn, 0.0), up


def test_dkw_epsilon_hand_value():
    # n = 128, one-sided alpha 0.01 -> pass 0.02: sqrt(4.605170 / 256) = sqrt(0.0179890) = 0.134123
    assert dkw_epsilon(128, 0.02) == pytest.approx(np.sqrt(np.log(100) / 256), rel=1e-12)
    assert dkw_epsilon(128, 0.02) == pytest.approx(0.134123, abs=1e-6)


def test_clopper_pearson_known_values():
    # 8 successes in 10: 95% CP interval (0.44390, 0.97479) and 99% (0.35180, 0.98915) (textbook values)
    x = np.array([1] * 8 + [0] * 2)
    lo, hi = binomial_bounds(x, alpha=0.05)
    assert (lo, hi) == (pytest.approx(0.44390, abs=1e-5), pytest.approx(0.97479, abs=1e-5))
    lo, hi = binomial_bounds(x, alpha=0.01)
    assert (lo, hi) == (pytest.approx(0.35180, abs=1e-5), pytest.approx(0.98915, abs=1e-5))


def test_clopper_pearson_edges_closed_form():
    # k = 0: upper = 1 - (alpha/2)^(1/n); k = n: lower = (alpha/2)^(1/n)
    n, alpha = 128, 0.02
    lo, hi = binomial_bounds(np.zeros(n), alpha)
    assert lo == 0.0 and hi == pytest.approx(1 - (alpha / 2) ** (1 / n), rel=1e-10)
    lo, hi = binomial_bounds(np.ones(n), alpha)
    assert hi == 1.0 and lo == pytest.approx((alpha / 2) ** (1 / n), rel=1e-10)


def test_binomial_rows_and_bad_input():
    x = np.array([[1, 0, 0, 0], [1, 1, 1, 0]])
    lo, hi = binomial_bounds(x, 0.1)
    assert lo.shape == hi.shape == (2,) and (hi[1] > hi[0])
    with pytest.raises(ValueError, match="0/1"):
        binomial_bounds(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="alpha"):
        binomial_bounds(np.array([0, 1]), alpha=1.5)


def test_cdf_and_survival_band():
    s = np.array([0.1, 0.2, 0.2, 0.9])
    cdf, lo, hi = cdf_bounds(s, np.array([0.0, 0.2, 1.0]), alpha=0.5)
    eps = np.sqrt(np.log(4) / 8)
    np.testing.assert_allclose(cdf, [0.0, 0.75, 1.0])
    np.testing.assert_allclose(lo, [0.0, 0.75 - eps, 1 - eps])
    np.testing.assert_allclose(hi, [eps, 1.0, 1.0])
    surv, slo, shi = survival_bounds(s, np.array([0.2]), alpha=0.5)
    np.testing.assert_allclose([surv[0], slo[0], shi[0]], [0.25, 0.0, 0.25 + eps])


def test_expectation_bounds_constant_samples():
    # all samples 0: F = 1 on the grid, so upper = 1 - (1 - eps) * (1 - 0) = eps (left rule)
    n, alpha = 128, 0.02
    mean, lo, hi = expectation_bounds(np.zeros(n), alpha)
    assert mean == 0.0 and lo == pytest.approx(0.0, abs=1e-12)
    assert hi == pytest.approx(dkw_epsilon(n, alpha), rel=1e-9)
    # all samples 1: F = 0 below 1, F(1) = 1: lower = 1 - eps * (1 - 1/99) - ... >= 1 - eps - h
    mean, lo, hi = expectation_bounds(np.ones(n), alpha)
    assert mean == 1.0 and hi == pytest.approx(1.0) and lo >= 1 - dkw_epsilon(n, alpha) - 1 / 99 - 1e-12


def test_expectation_and_variance_match_conbo_transcription():
    rng = np.random.default_rng(0)
    for _ in range(3):
        s = rng.beta(0.7, 1.5, size=128)
        mu_lo, mu_hi, var_lo, var_hi = _conbo_variance_loop(s, 0.02)
        _, lo, hi = expectation_bounds(s, 0.02)
        assert (lo, hi) == (pytest.approx(mu_lo, abs=1e-12), pytest.approx(mu_hi, abs=1e-12))
        var, vlo, vhi = variance_bounds(s, 0.02)
        assert (vlo, vhi) == (pytest.approx(var_lo, abs=1e-12), pytest.approx(var_hi, abs=1e-12))
        assert vlo <= var <= vhi and lo <= s.mean() <= hi


def test_rows_equal_single_rows_and_ed():
    rng = np.random.default_rng(1)
    s = rng.uniform(size=(3, 64))
    _, _, hi = expectation_bounds(s, 0.02)
    _, _, sd = std_bounds(s, 0.02)
    for i in range(3):
        assert hi[i] == pytest.approx(expectation_bounds(s[i], 0.02)[2])
        assert sd[i] == pytest.approx(std_bounds(s[i], 0.02)[2])
    np.testing.assert_allclose(ed_score(hi, sd), hi + 2 * sd)


def test_bounds_reject_scores_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expectation_bounds(np.array([0.5, 1.5]))
