"""The bivariate encoder/decoder law: recovery of known parameters on a cross design (the paper's
encoder-scaling + decoder-scaling runs), prediction off the cross, the optimal allocation, the
bootstrap, negative exponents, clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xentlab.scaling.bivariate import bootstrap_bivariate, fit_bivariate, fit_univariate

NE_BAR, ND_BAR = 1.0e5, 1.3e5
TRUE = {"alpha": 0.8, "p_e": 0.25, "p_d": 0.45, "l_inf": 0.6}


def _law(ne, nd, alpha, p_e, p_d, l_inf):
    return l_inf + alpha * (NE_BAR / np.asarray(ne, float)) ** p_e * (ND_BAR / np.asarray(nd, float)) ** p_d


def _cross(k=(0.5, 1, 1.5, 2, 3)):
    """Encoder ladder (N_d = ND_BAR) and decoder ladder (N_e = NE_BAR), the base point once."""
    ne = [NE_BAR * f for f in k] + [NE_BAR] * (len(k) - 1)
    nd = [ND_BAR] * len(k) + [ND_BAR * f for f in k if f != 1]
    return np.array(ne), np.array(nd)


def test_recovers_parameters_from_a_noiseless_cross_design():
    ne, nd = _cross()
    fit = fit_bivariate(ne, nd, _law(ne, nd, **TRUE), ne_bar=NE_BAR, nd_bar=ND_BAR)
    for k, v in TRUE.items():
        assert getattr(fit, k) == pytest.approx(v, rel=1e-4), k
    assert fit.r2 == pytest.approx(1.0, abs=1e-10)
    assert fit.n_points == 9
    # off the cross (both sides scaled): exact for an exact law
    assert fit.predict(4 * NE_BAR, 4 * ND_BAR) == pytest.approx(
        _law(4 * NE_BAR, 4 * ND_BAR, **TRUE), rel=1e-6
    )
    assert isinstance(fit.predict(NE_BAR, ND_BAR), float)
    # at the base point the reducible loss is alpha (the normalisers are the base sizes)
    assert fit.predict(NE_BAR, ND_BAR) - fit.l_inf == pytest.approx(TRUE["alpha"], rel=1e-4)


def test_optimal_ratio_is_p_e_over_p_d_and_is_the_argmin_at_fixed_total():
    ne, nd = _cross()
    fit = fit_bivariate(ne, nd, _law(ne, nd, **TRUE), ne_bar=NE_BAR, nd_bar=ND_BAR)
    assert fit.optimal_ratio() == pytest.approx(TRUE["p_e"] / TRUE["p_d"], rel=1e-4)
    # brute force: the split of N = 1e6 with the lowest predicted loss
    share = np.linspace(0.01, 0.99, 9801)
    n = 1e6
    best = share[np.argmin(fit.predict(share * n, (1 - share) * n))]
    assert best / (1 - best) == pytest.approx(TRUE["p_e"] / TRUE["p_d"], rel=2e-3)


def test_proportional_scaling_has_exponent_p_e_plus_p_d():
    # L - L_inf at (k Nbar_e, k Nbar_d) is alpha k^-(p_e + p_d): the log-log slope in k
    ne, nd = _cross()
    fit = fit_bivariate(ne, nd, _law(ne, nd, **TRUE), ne_bar=NE_BAR, nd_bar=ND_BAR)
    k = np.array([2.0, 8.0])
    red = fit.predict(k * NE_BAR, k * ND_BAR) - fit.l_inf
    slope = (math.log(red[1]) - math.log(red[0])) / (math.log(k[1]) - math.log(k[0]))
    assert -slope == pytest.approx(TRUE["p_e"] + TRUE["p_d"], rel=1e-4)


def test_noisy_points_give_close_parameters_and_bootstrap_intervals_cover_them():
    rng = np.random.default_rng(0)
    ne, nd = _cross((0.25, 0.5, 1, 2, 4, 8))
    y = _law(ne, nd, **TRUE) + rng.normal(0, 0.002, ne.size)
    fit = fit_bivariate(ne, nd, y, ne_bar=NE_BAR, nd_bar=ND_BAR)
    assert fit.p_e == pytest.approx(TRUE["p_e"], abs=0.08)
    assert fit.p_d == pytest.approx(TRUE["p_d"], abs=0.08)
    assert fit.r2 > 0.99
    boot = bootstrap_bivariate(ne, nd, y, ne_bar=NE_BAR, nd_bar=ND_BAR, n_boot=60, seed=1)
    assert boot["n_ok"] > 30
    lo, hi = boot["p_d_ci95"]
    assert lo <= fit.p_d <= hi


def test_bootstrap_intervals_are_nan_below_min_ok_successful_refits():
    # 5 points in a cross: most resamples repeat a point and are skipped (< 5 distinct), so
    # only a few refits succeed; percentiles of those few draws must not pass for an interval.
    ne, nd = _cross()
    ne, nd = ne[[0, 2, 3, 5, 6]], nd[[0, 2, 3, 5, 6]]
    y = _law(ne, nd, **TRUE)
    boot = bootstrap_bivariate(ne, nd, y, ne_bar=NE_BAR, nd_bar=ND_BAR, n_boot=40, seed=0)
    assert 0 < boot["n_ok"] < 20
    assert all(math.isnan(v) for v in boot["p_e_ci95"])
    loose = bootstrap_bivariate(ne, nd, y, ne_bar=NE_BAR, nd_bar=ND_BAR, n_boot=40, seed=0, min_ok=1)
    assert loose["n_ok"] == boot["n_ok"]
    assert not any(math.isnan(v) for v in loose["p_e_ci95"])


def test_a_loss_rising_with_encoder_size_gives_a_negative_exponent():
    ne, nd = _cross()
    truth = dict(TRUE, p_e=-0.2)
    fit = fit_bivariate(ne, nd, _law(ne, nd, **truth), ne_bar=NE_BAR, nd_bar=ND_BAR)
    assert fit.p_e == pytest.approx(-0.2, rel=1e-3)
    assert math.isnan(fit.optimal_ratio())


def test_clear_errors():
    ne, nd = _cross()
    y = _law(ne, nd, **TRUE)
    with pytest.raises(ValueError, match="at least 5"):
        fit_bivariate(ne[:4], nd[:4], y[:4], ne_bar=NE_BAR, nd_bar=ND_BAR)
    with pytest.raises(ValueError, match="same length"):
        fit_bivariate(ne, nd[:-1], y, ne_bar=NE_BAR, nd_bar=ND_BAR)
    with pytest.raises(ValueError, match="two values"):
        fit_bivariate(ne, np.full(ne.size, ND_BAR), y, ne_bar=NE_BAR, nd_bar=ND_BAR)
    with pytest.raises(ValueError, match="positive"):
        fit_bivariate(ne, nd, -y, ne_bar=NE_BAR, nd_bar=ND_BAR)
    with pytest.raises(ValueError, match="ne_bar"):
        fit_bivariate(ne, nd, y, ne_bar=0.0, nd_bar=ND_BAR)


def test_univariate_recovers_its_law_and_handles_a_flat_or_rising_loss():
    n = np.geomspace(1e4, 1e6, 7)
    y = 0.5 + 0.3 * (2e5 / n) ** 0.4
    fit = fit_univariate(n, y, n_bar=2e5)
    assert (fit.alpha, fit.p, fit.l_inf) == pytest.approx((0.3, 0.4, 0.5), rel=1e-4)
    assert fit.predict(1e7) == pytest.approx(0.5 + 0.3 * (2e5 / 1e7) ** 0.4, rel=1e-6)
    # a loss that rises with N is fitted with a negative exponent, not an error
    rising = fit_univariate(n, 0.5 + 0.1 * (n / 2e5) ** 0.3, n_bar=2e5)
    assert rising.p == pytest.approx(-0.3, rel=1e-3)
    with pytest.raises(ValueError, match="at least 4"):
        fit_univariate(n[:3], y[:3], n_bar=2e5)


def test_total_size_alone_cannot_fit_a_law_with_different_exponents():
    # on the cross design with p_e != p_d, points with the same N_e + N_d have different losses, so the
    # univariate fit leaves residuals the bivariate one does not
    ne, nd = _cross()
    y = _law(ne, nd, **dict(TRUE, p_e=0.05, p_d=0.6))
    bi = fit_bivariate(ne, nd, y, ne_bar=NE_BAR, nd_bar=ND_BAR)
    uni = fit_univariate(ne + nd, y, n_bar=NE_BAR + ND_BAR)
    assert bi.r2 == pytest.approx(1.0, abs=1e-9)
    assert uni.r2 < 0.99


def test_rmse_and_r2_by_hand_on_noisy_points():
    rng = np.random.default_rng(0)
    ne, nd = _cross((0.25, 0.5, 1, 2, 4, 8))
    y = _law(ne, nd, **TRUE) + rng.normal(0, 0.002, ne.size)
    fit = fit_bivariate(ne, nd, y, ne_bar=NE_BAR, nd_bar=ND_BAR)
    res = np.asarray(fit.predict(ne, nd)) - y
    assert fit.rmse == pytest.approx(float(np.sqrt(np.mean(res**2))), rel=1e-9)
    assert fit.r2 == pytest.approx(1 - (res**2).sum() / ((y - y.mean()) ** 2).sum(), rel=1e-9)
    assert fit.as_dict()["ne_bar"] == NE_BAR and fit.as_dict()["nd_bar"] == ND_BAR


def test_optimal_ratio_is_nan_when_either_exponent_is_not_positive():
    from xentlab.scaling.bivariate import BivariateFit

    base = dict(alpha=1.0, l_inf=0.5, ne_bar=1.0, nd_bar=1.0, r2=1.0, rmse=0.0, n_points=5)
    assert BivariateFit(p_e=0.2, p_d=0.4, **base).optimal_ratio() == pytest.approx(0.5)
    assert math.isnan(BivariateFit(p_e=0.2, p_d=-0.1, **base).optimal_ratio())
    assert math.isnan(BivariateFit(p_e=-0.2, p_d=0.4, **base).optimal_ratio())


def test_bootstrap_refits_the_seeded_resamples():
    # replicate the documented procedure: idx = rng.integers(0, n, n) from default_rng(seed); resamples
    # with < 5 distinct points or a single N_e or N_d value are skipped; the others are refitted with the
    # SAME normalisers; the intervals are the 2.5th / 97.5th percentiles of the refits
    rng_noise = np.random.default_rng(0)
    ne, nd = _cross((0.5, 1, 2, 4))
    y = _law(ne, nd, **TRUE) + rng_noise.normal(0, 0.002, ne.size)
    boot = bootstrap_bivariate(ne, nd, y, ne_bar=NE_BAR, nd_bar=ND_BAR, n_boot=12, seed=4, min_ok=1)
    rng = np.random.default_rng(4)
    draws = {k: [] for k in ("p_e", "p_d", "l_inf", "alpha")}
    for _ in range(12):
        idx = rng.integers(0, y.size, y.size)
        if np.unique(idx).size < 5 or np.unique(ne[idx]).size < 2 or np.unique(nd[idx]).size < 2:
            continue
        f = fit_bivariate(ne[idx], nd[idx], y[idx], ne_bar=NE_BAR, nd_bar=ND_BAR)
        for k in draws:
            draws[k].append(getattr(f, k))
    assert 0 < boot["n_ok"] == len(draws["p_e"]) < 12
    for k, v in draws.items():
        np.testing.assert_allclose(boot[k], v, rtol=1e-12, err_msg=k)
        assert boot[f"{k}_ci95"] == pytest.approx(tuple(np.percentile(v, [2.5, 97.5])), rel=1e-12), k
    # exactly min_ok successful refits are enough for an interval
    exact = bootstrap_bivariate(
        ne, nd, y, ne_bar=NE_BAR, nd_bar=ND_BAR, n_boot=12, seed=4, min_ok=boot["n_ok"]
    )
    assert not any(math.isnan(v) for v in exact["p_e_ci95"])


def test_more_clear_errors():
    ne, nd = _cross()
    y = _law(ne, nd, **TRUE)
    with pytest.raises(ValueError, match="two values"):
        fit_bivariate(np.full(ne.size, NE_BAR), nd, y, ne_bar=NE_BAR, nd_bar=ND_BAR)
    with pytest.raises(ValueError, match="positive"):
        fit_bivariate(ne, -nd, y, ne_bar=NE_BAR, nd_bar=ND_BAR)
    with pytest.raises(ValueError, match="finite"):
        fit_bivariate(ne, nd, np.where(ne > NE_BAR, np.nan, y), ne_bar=NE_BAR, nd_bar=ND_BAR)
    n = np.geomspace(1e4, 1e6, 5)
    u = 0.5 + 0.3 * (2e5 / n) ** 0.4
    with pytest.raises(ValueError, match="at least 4"):
        fit_univariate(n[:3], u[:3], n_bar=2e5)
    with pytest.raises(ValueError, match="two values"):
        fit_univariate(np.full(5, 2e5), u, n_bar=2e5)
    with pytest.raises(ValueError, match="n_bar"):
        fit_univariate(n, u, n_bar=0.0)
    with pytest.raises(ValueError, match="finite"):
        fit_univariate(n, np.where(n > 1e5, np.nan, u), n_bar=2e5)
