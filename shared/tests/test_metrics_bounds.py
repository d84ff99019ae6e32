"""xentlab.metrics.bounds: Clopper-Pearson against scipy's exact binomial interval and textbook values,
the DKW band by hand, and the mean / variance bounds against a literal loop transcription of conbo 0.1.1."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from xentlab.metrics.bounds import (
    binomial_bounds,
    cdf_bounds,
    dkw_epsilon,
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


# --------------------------------------------------------------------------- Clopper-Pearson


@pytest.mark.parametrize("n", [1, 7, 20, 128])
@pytest.mark.parametrize("alpha", [0.01, 0.02, 0.05, 0.2])
def test_clopper_pearson_matches_scipy_exact_interval(n, alpha):
    # every k in 0..n, one row per k: the same interval as scipy.stats.binomtest's "exact" (Clopper-Pearson)
    x = (np.arange(n)[None, :] < np.arange(n + 1)[:, None]).astype(float)  # row k has k ones
    lo, hi = binomial_bounds(x, alpha)
    for k in range(n + 1):
        ref = binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="exact")
        assert lo[k] == pytest.approx(ref.low, abs=1e-10), (n, k, alpha)
        assert hi[k] == pytest.approx(ref.high, abs=1e-10), (n, k, alpha)


def test_clopper_pearson_textbook_values():
    # 8 successes in 10: 95% CP interval (0.44390, 0.97479) and 99% (0.35180, 0.98915)
    x = np.array([1] * 8 + [0] * 2)
    lo, hi = binomial_bounds(x, alpha=0.05)
    assert (lo, hi) == (pytest.approx(0.44390, abs=1e-5), pytest.approx(0.97479, abs=1e-5))
    lo, hi = binomial_bounds(x, alpha=0.01)
    assert (lo, hi) == (pytest.approx(0.35180, abs=1e-5), pytest.approx(0.98915, abs=1e-5))


def test_clopper_pearson_edges_closed_form():
    # k = 0: P(K = 0 | p) = (1 - p)^n = alpha/2 gives upper = 1 - (alpha/2)^(1/n); k = n symmetric
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
    with pytest.raises(ValueError, match="shape"):
        binomial_bounds(np.zeros((2, 2, 2)))


# --------------------------------------------------------------------------- DKW


def test_dkw_epsilon_by_hand():
    # 2 exp(-2 n eps^2) = alpha  <=>  eps = sqrt(log(2 / alpha) / (2 n))
    # n = 50, alpha = 0.05: log(40) = 3.688879, / 100 -> sqrt(0.03688879) = 0.192065
    assert dkw_epsilon(50, 0.05) == pytest.approx(0.192065, abs=1e-6)
    # n = 128, alpha = 0.02: log(100) = 4.605170, / 256 -> sqrt(0.01798895) = 0.134123
    assert dkw_epsilon(128, 0.02) == pytest.approx(0.134123, abs=1e-6)
    eps = dkw_epsilon(50, 0.05)
    assert 2 * np.exp(-2 * 50 * eps**2) == pytest.approx(0.05, rel=1e-12)
    with pytest.raises(ValueError, match="alpha"):
        dkw_epsilon(10, 0.0)
    with pytest.raises(ValueError, match="n must"):
        dkw_epsilon(0, 0.05)


def test_cdf_and_survival_band_by_hand():
    # samples 0.1, 0.2, 0.2, 0.9: F_4(0) = 0, F_4(0.2) = 3/4, F_4(1) = 1; eps = sqrt(log(4) / 8)
    s = np.array([0.1, 0.2, 0.2, 0.9])
    cdf, lo, hi = cdf_bounds(s, np.array([0.0, 0.2, 1.0]), alpha=0.5)
    eps = np.sqrt(np.log(4) / 8)
    np.testing.assert_allclose(cdf, [0.0, 0.75, 1.0])
    np.testing.assert_allclose(lo, [0.0, 0.75 - eps, 1 - eps])
    np.testing.assert_allclose(hi, [eps, 1.0, 1.0])
    surv, slo, shi = survival_bounds(s, np.array([0.2]), alpha=0.5)
    np.testing.assert_allclose([surv[0], slo[0], shi[0]], [0.25, 0.0, 0.25 + eps])


def test_dkw_band_covers_the_true_cdf():
    # uniform samples, F(x) = x: the band must contain F on the whole grid in >= 1 - alpha of the draws
    rng = np.random.default_rng(0)
    n, alpha, trials = 64, 0.1, 2000
    grid = np.linspace(0, 1, 201)
    _, lo, hi = cdf_bounds(rng.uniform(size=(trials, n)), grid, alpha)
    covered = ((lo <= grid) & (grid <= hi)).all(-1).mean()
    assert covered >= 1 - alpha


# --------------------------------------------------------------------------- mean / variance


def test_expectation_bounds_constant_samples():
    # all samples 0: F = 1 on the grid, so upper = 1 - (1 - eps) * (1 - 0) = eps (left rule)
    n, alpha = 128, 0.02
    mean, lo, hi = expectation_bounds(np.zeros(n), alpha)
    assert mean == 0.0 and lo == pytest.approx(0.0, abs=1e-12)
    assert hi == pytest.approx(dkw_epsilon(n, alpha), rel=1e-9)
    # all samples 1: F = 0 below 1, F(1) = 1: lower >= 1 - eps - h
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


def test_rows_equal_single_rows():
    rng = np.random.default_rng(1)
    s = rng.uniform(size=(3, 64))
    _, _, hi = expectation_bounds(s, 0.02)
    var, vlo, vhi = variance_bounds(s, 0.02)
    sd, sdlo, sdhi = std_bounds(s, 0.02)
    for i in range(3):
        assert hi[i] == pytest.approx(expectation_bounds(s[i], 0.02)[2])
        assert sdhi[i] == pytest.approx(std_bounds(s[i], 0.02)[2])
    np.testing.assert_allclose(sd, np.sqrt(var))
    np.testing.assert_allclose(sdlo, np.sqrt(vlo))
    np.testing.assert_allclose(sdhi, np.sqrt(vhi))


def test_bounds_reject_scores_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expectation_bounds(np.array([0.5, 1.5]))


def test_variance_point_estimate_is_the_plugin_variance():
    # The first value is the variance of the empirical distribution (ddof = 0, the quantity the CDF band
    # bounds): [0, 0, 1, 1] has mean 1/2 and every squared deviation 1/4, so 0.25 (ddof = 1 would give 1/3).
    var, lo, hi = variance_bounds(np.array([0.0, 0.0, 1.0, 1.0]), 0.2)
    assert var == pytest.approx(0.25, abs=1e-15)
    sd, _, _ = std_bounds(np.array([0.0, 0.0, 1.0, 1.0]), 0.2)
    assert sd == pytest.approx(0.5, abs=1e-15)
    s = np.random.default_rng(2).uniform(size=(3, 50))
    np.testing.assert_allclose(variance_bounds(s, 0.02)[0], np.var(s, axis=-1), rtol=1e-12)


def test_std_bounds_are_square_roots_when_the_lower_bound_is_positive():
    # 500 uniform scores: the variance band no longer reaches 0 (lower ~ 0.016), so the std's lower
    # bound must be its square root, not the variance bound itself.
    s = np.random.default_rng(3).uniform(size=500)
    var, vlo, vhi = variance_bounds(s, 0.05)
    sd, sdlo, sdhi = std_bounds(s, 0.05)
    assert vlo > 0.01
    assert (sd, sdlo, sdhi) == (
        pytest.approx(np.sqrt(var), rel=1e-12),
        pytest.approx(np.sqrt(vlo), rel=1e-12),
        pytest.approx(np.sqrt(vhi), rel=1e-12),
    )
