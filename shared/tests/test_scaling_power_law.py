"""Scaling-law fits: recover known parameters from noiseless and noisy synthetic points, R^2, the
pure power law, the bootstrap over points, clear errors with too few or bad points."""

from __future__ import annotations

import numpy as np
import pytest

from xentlab.scaling import (
    bootstrap_power_law_plus_constant,
    fit_power_law,
    fit_power_law_plus_constant,
)

TRUE = {"l_inf": 1.2, "x0": 2.0e4, "alpha": 0.35}


def _law(x, l_inf, x0, alpha):
    return l_inf + (x0 / np.asarray(x, dtype=np.float64)) ** alpha


def test_recovers_parameters_from_noiseless_points():
    x = np.geomspace(1e3, 1e6, 8)
    fit = fit_power_law_plus_constant(x, _law(x, **TRUE))
    assert fit.l_inf == pytest.approx(TRUE["l_inf"], rel=1e-4)
    assert fit.alpha == pytest.approx(TRUE["alpha"], rel=1e-4)
    assert fit.x0 == pytest.approx(TRUE["x0"], rel=1e-3)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9)
    assert fit.n_points == 8
    # prediction outside the fitted range (extrapolation) is exact for an exact law
    assert fit.predict(1e8) == pytest.approx(_law(1e8, **TRUE), rel=1e-5)
    assert isinstance(fit.predict(1e8), float)
    np.testing.assert_allclose(fit.reducible(x), (TRUE["x0"] / x) ** TRUE["alpha"], rtol=1e-3)


def test_huge_x_values_fit_as_well():
    # compute axis: x ~ 1e10..1e15 FLOPs; the ln x0 parametrisation keeps this well conditioned
    x = np.geomspace(1e10, 1e15, 10)
    fit = fit_power_law_plus_constant(x, _law(x, 0.9, 3e11, 0.2))
    assert fit.l_inf == pytest.approx(0.9, rel=1e-4)
    assert fit.alpha == pytest.approx(0.2, rel=1e-4)


def test_recovers_parameters_from_noisy_points():
    rng = np.random.default_rng(0)
    x = np.geomspace(1e3, 1e6, 12)
    y = _law(x, **TRUE) * np.exp(rng.normal(0, 0.003, x.size))  # 0.3% multiplicative noise
    fit = fit_power_law_plus_constant(x, y)
    assert fit.l_inf == pytest.approx(TRUE["l_inf"], rel=0.05)
    assert fit.alpha == pytest.approx(TRUE["alpha"], rel=0.2)
    assert fit.r2 > 0.99
    assert fit.rmse_log < 0.01


def test_l_inf_upper_bound_is_respected():
    x = np.geomspace(1e3, 1e6, 8)
    fit = fit_power_law_plus_constant(x, _law(x, **TRUE), l_inf_max=1.0)  # truth 1.2 is out of bounds
    assert fit.l_inf <= 1.0 + 1e-12
    assert fit.r2 < 1.0


def test_fixed_l_inf_fits_only_the_power_law():
    x = np.geomspace(1e3, 1e6, 6)
    fit = fit_power_law_plus_constant(x, _law(x, **TRUE), fix_l_inf=TRUE["l_inf"])
    assert fit.l_inf == TRUE["l_inf"]
    assert fit.alpha == pytest.approx(TRUE["alpha"], rel=1e-4)
    with pytest.raises(ValueError, match="fix_l_inf"):
        fit_power_law_plus_constant(x, _law(x, **TRUE), fix_l_inf=10.0)


def test_pure_power_law():
    x = np.geomspace(1e9, 1e13, 7)
    fit = fit_power_law(x, 3.0 * x**0.7)
    assert fit.beta == pytest.approx(0.7, abs=1e-10)
    assert fit.a == pytest.approx(3.0, rel=1e-8)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    assert fit.predict(1e14) == pytest.approx(3.0 * 1e14**0.7, rel=1e-8)
    rng = np.random.default_rng(1)
    noisy = fit_power_law(x, 3.0 * x**0.7 * np.exp(rng.normal(0, 0.05, x.size)))
    assert noisy.beta == pytest.approx(0.7, abs=0.05)


def test_bootstrap_spread_covers_the_truth():
    rng = np.random.default_rng(2)
    x = np.geomspace(1e3, 1e6, 8)
    y = _law(x, **TRUE) * np.exp(rng.normal(0, 0.003, x.size))
    boot = bootstrap_power_law_plus_constant(x, y, n_boot=40, seed=0)
    assert boot["n_ok"] > 20
    lo, hi = boot["l_inf_ci95"]
    assert lo <= hi
    assert lo - 0.05 <= TRUE["l_inf"] <= hi + 0.05
    again = bootstrap_power_law_plus_constant(x, y, n_boot=40, seed=0)
    np.testing.assert_array_equal(boot["l_inf"], again["l_inf"])  # deterministic in seed


def test_clear_errors():
    with pytest.raises(ValueError, match="at least 3 points"):
        fit_power_law_plus_constant([1e3, 1e4], [2.0, 1.5])
    with pytest.raises(ValueError, match="same length"):
        fit_power_law_plus_constant([1e3, 1e4, 1e5], [2.0, 1.5])
    with pytest.raises(ValueError, match="positive"):
        fit_power_law_plus_constant([1e3, 1e4, -1.0], [2.0, 1.5, 1.2])
    with pytest.raises(ValueError, match="finite"):
        fit_power_law_plus_constant([1e3, 1e4, 1e5], [2.0, np.nan, 1.2])
    with pytest.raises(ValueError, match="l_inf_max"):
        fit_power_law_plus_constant([1e3, 1e4, 1e5], [2.0, 1.5, 1.2], l_inf_max=-1.0)
    with pytest.raises(ValueError, match="at least 2 points"):
        fit_power_law([1e3], [2.0])
    with pytest.raises(ValueError, match="distinct"):
        fit_power_law([1e3, 1e3], [2.0, 3.0])
    with pytest.raises(ValueError, match="at least 3 points"):
        bootstrap_power_law_plus_constant([1.0, 2.0], [1.0, 2.0])


def test_points_that_rise_with_x_fit_without_crashing():
    # Losses that grow with size (an unconverged ladder) have no decreasing power law: the best fit
    # pushes alpha to its lower bound and ln x0 to a huge value, so x0 = exp(ln x0) leaves the float
    # range. The fit used to crash there (math.log(0)); it must return finite predictions, and since
    # a decreasing law cannot follow a rising trend, the prediction is flat within the data's range.
    x = np.array([1e3, 2e3, 4e3, 8e3, 1.6e4])
    y = np.array([1.0, 1.1, 1.2, 1.3, 1.4])
    fit = fit_power_law_plus_constant(x, y)
    pred = np.asarray(fit.predict(x))
    assert np.all(np.isfinite(pred)) and fit.log_x0 is not None
    assert np.all(np.diff(pred) <= 1e-12)  # non-increasing in x
    assert y.min() <= pred.min() and pred.max() <= y.max()


def test_rmse_log_is_the_root_mean_square_of_the_log_residuals():
    rng = np.random.default_rng(0)
    x = np.geomspace(1e3, 1e6, 12)
    y = _law(x, **TRUE) * np.exp(rng.normal(0, 0.003, x.size))
    fit = fit_power_law_plus_constant(x, y)
    pred = np.asarray(fit.predict(x))
    assert fit.rmse_log == pytest.approx(float(np.sqrt(np.mean((np.log(pred) - np.log(y)) ** 2))), rel=1e-12)
    ss_res, ss_tot = ((y - pred) ** 2).sum(), ((y - y.mean()) ** 2).sum()
    assert fit.r2 == pytest.approx(1 - ss_res / ss_tot, rel=1e-12)
    assert set(fit.as_dict()) == {"l_inf", "x0", "alpha", "r2", "rmse_log", "n_points"}
    assert fit_power_law(x, y).as_dict()["n_points"] == 12


def test_bootstrap_refits_the_seeded_resamples_with_three_distinct_x():
    # the bootstrap draws idx = rng.integers(0, n, n) per resample from default_rng(seed), skips resamples
    # with fewer than 3 distinct x, refits the others; the intervals are the 2.5th / 97.5th percentiles
    rng_noise = np.random.default_rng(2)
    x = np.geomspace(1e3, 1e6, 5)
    y = _law(x, **TRUE) * np.exp(rng_noise.normal(0, 0.003, x.size))
    boot = bootstrap_power_law_plus_constant(x, y, n_boot=12, seed=3)
    rng = np.random.default_rng(3)
    l_infs, alphas = [], []
    for _ in range(12):
        idx = rng.integers(0, x.size, x.size)
        if np.unique(x[idx]).size < 3:
            continue
        f = fit_power_law_plus_constant(x[idx], y[idx])
        l_infs.append(f.l_inf)
        alphas.append(f.alpha)
    assert 0 < boot["n_ok"] == len(l_infs) < 12  # some resamples are skipped, some refit
    np.testing.assert_array_equal(boot["l_inf"], l_infs)
    np.testing.assert_array_equal(boot["alpha"], alphas)
    assert boot["l_inf_ci95"] == pytest.approx(tuple(np.percentile(l_infs, [2.5, 97.5])), rel=1e-12)
    assert boot["alpha_ci95"] == pytest.approx(tuple(np.percentile(alphas, [2.5, 97.5])), rel=1e-12)


def test_loose_l_inf_bound_and_bad_fixed_l_inf():
    x = np.geomspace(1e3, 1e6, 8)
    y = _law(x, **TRUE)
    # an upper bound above min(L) is capped just below min(L): the fit is the unbounded one
    fit = fit_power_law_plus_constant(x, y, l_inf_max=100.0)
    assert fit.l_inf == pytest.approx(TRUE["l_inf"], rel=1e-4) and fit.l_inf < y.min()
    with pytest.raises(ValueError, match="fix_l_inf"):
        fit_power_law_plus_constant(x, y, fix_l_inf=-0.1)
    with pytest.raises(ValueError, match="positive"):
        fit_power_law_plus_constant(x, np.where(x > 1e5, 0.0, y))


def test_pure_power_law_r2_is_on_ln_y():
    # the pure power law is fitted in (ln x, ln y), and its R^2 is that fit's, on ln y
    x = np.geomspace(1e9, 1e13, 7)
    rng = np.random.default_rng(1)
    y = 3.0 * x**0.7 * np.exp(rng.normal(0, 0.05, x.size))
    fit = fit_power_law(x, y)
    res = np.log(y) - (np.log(fit.a) + fit.beta * np.log(x))
    ly = np.log(y)
    assert fit.r2 == pytest.approx(1 - (res**2).sum() / ((ly - ly.mean()) ** 2).sum(), rel=1e-9)
