"""compsum.bounds: the closed forms of T_tau, its inverse, the conditional minimisers, the bound itself."""

import numpy as np
import pytest
from compsum.bounds import (
    check_bound,
    conditional_risk,
    gamma_tau,
    min_conditional_risk,
    optimal_probs,
    regrets_random_scores,
    regrets_worst_ties,
    t_tau,
)

T = np.linspace(0, 1, 101)


def test_known_special_cases():
    np.testing.assert_allclose(t_tau(T, 0.0, 10), 1 - np.sqrt(1 - T**2), atol=1e-12)  # sum-exponential
    ce = 0.5 * (1 + T) * np.log1p(T) + 0.5 * np.where(T < 1, (1 - T) * np.log1p(-np.minimum(T, 1 - 1e-16)), 0)
    np.testing.assert_allclose(t_tau(T, 1.0, 10), ce, atol=1e-12)  # logistic
    np.testing.assert_allclose(t_tau(T, 2.0, 7), T / 7)  # MAE: t / n


def test_branches_join_continuously():
    for n in (2, 10):
        np.testing.assert_allclose(t_tau(T, 1 - 1e-6, n), t_tau(T, 1.0, n), atol=1e-5)
        np.testing.assert_allclose(t_tau(T, 1 + 1e-6, n), t_tau(T, 1.0, n), atol=1e-5)
        np.testing.assert_allclose(t_tau(T, 2 - 1e-6, n), t_tau(T, 2.0, n), atol=1e-5)


def test_gamma_inverts_t():
    for tau in (0.0, 0.5, 1.0, 1.5, 2.0):
        # T(t) ~ t^2 near 0, so the inverse is only determined to ~sqrt(machine eps)
        np.testing.assert_allclose(gamma_tau(t_tau(T, tau, 5), tau, 5), T, atol=1e-7)
    assert t_tau(np.array([1.0]), 0.5, 3)[0] > 0 and np.all(np.diff(t_tau(T, 0.5, 3)) > 0)


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.5])
def test_optimal_probs_minimise_the_conditional_risk(tau):
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=50)
    s_star = optimal_probs(p, tau)
    best = conditional_risk(s_star, p, tau)
    for _ in range(20):  # random feasible perturbations never do better (convex problem, KKT point)
        s = np.abs(s_star + 0.05 * rng.normal(size=s_star.shape))
        s /= s.sum(1, keepdims=True)
        assert np.all(conditional_risk(s, p, tau) >= best - 1e-12)
    if tau == 1.0:  # CE: s* = p and C* is the entropy
        np.testing.assert_allclose(best, -(p * np.log(p)).sum(1))


def test_bound_is_attained_for_two_classes():
    # n = 2, p = ((1+t)/2, (1-t)/2), scores tying both classes: dC_tau = T_tau(t) exactly
    t = np.linspace(0.01, 0.99, 50)
    p = np.stack([(1 + t) / 2, (1 - t) / 2], axis=1)
    for tau in (0.0, 0.5, 1.0, 1.5, 2.0):
        d01, dtau = regrets_worst_ties(p, tau)
        np.testing.assert_allclose(d01, t)
        np.testing.assert_allclose(dtau, t_tau(t, tau, 2), rtol=1e-9, atol=1e-12)


def test_no_violation_on_random_samples():
    rng = np.random.default_rng(1)
    for n in (3, 10):
        p = rng.dirichlet(np.full(n, 0.5), size=2000)
        logits = rng.normal(size=(2000, n)) * 3
        for tau in (0.0, 0.5, 1.0, 1.5, 2.0):
            for d01, dtau in (regrets_random_scores(p, logits, tau), regrets_worst_ties(p, tau)):
                r = check_bound(d01, dtau, tau, n, tol=1e-7)
                assert r["violations"] == 0 and r["min_ratio"] >= 1 - 1e-6


def test_mae_minimum_and_errors():
    p = np.array([[0.5, 0.3, 0.2]])
    assert min_conditional_risk(p, 2.0)[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="tau in"):
        t_tau(T, 2.5, 3)
    with pytest.raises(ValueError, match="no interior minimiser"):
        optimal_probs(p, 2.0)


def test_two_class_distributions_give_the_n2_regret_in_any_n():
    # p = ((1+t)/2, (1-t)/2, 0, ..., 0) in n classes with the two top scores tied: the surrogate regret
    # does not see the empty classes, so dC_tau = T_tau(t; n=2) for every n. Any valid bound therefore has
    # T_tau(t; n) <= T_tau(t; 2); for tau in (1, 2) our reading has T(t; n) = T(t; 2) * (2/n)^(tau-1),
    # which is why the smallest ratio the experiment finds there is exactly (n/2)^(tau-1) (sqrt(n/2) at 1.5).
    t = np.linspace(0.05, 0.95, 19)
    for n in (3, 10):
        p = np.zeros((len(t), n))
        p[:, 0], p[:, 1] = (1 + t) / 2, (1 - t) / 2
        for tau in (0.5, 1.0, 1.5):
            d01, dtau = regrets_worst_ties(p, tau)
            first = slice(0, len(t))  # m = 2: the two non-empty classes tied
            np.testing.assert_allclose(d01[first], t)
            np.testing.assert_allclose(dtau[first], t_tau(t, tau, 2), rtol=1e-9, atol=1e-12)
        ratio = t_tau(t, 1.5, 2) / t_tau(t, 1.5, n)
        np.testing.assert_allclose(ratio, np.sqrt(n / 2), rtol=1e-12)


def test_min_ratio_search_finds_the_two_class_worst_case():
    from compsum.bounds import min_ratio_search

    # tau = 1.5, n = 3: the worst distributions found are the two-class ones, ratio to T(t; 2) -> 1
    assert min_ratio_search(1.5, 3, restarts=4) == pytest.approx(1.0, abs=1e-4)


def test_mae_bound_t_over_n_is_attained_for_three_classes():
    # p = (a, a, 1 - 2a), all three scores tied (m = 3): 0-1 regret t = a - (1 - 2a) = 3a - 1 and MAE regret
    # (1 - mean p) - (1 - a) = a - 1/3 = t / 3, i.e. exactly T_2(t) = t / n with n = 3
    a = np.linspace(0.36, 0.49, 14)
    p = np.stack([a, a, 1 - 2 * a], axis=1)
    d01, dtau = regrets_worst_ties(p, 2.0)
    m3 = slice(len(a), 2 * len(a))  # second block: the top-3 group
    np.testing.assert_allclose(d01[m3], 3 * a - 1)
    np.testing.assert_allclose(dtau[m3], t_tau(3 * a - 1, 2.0, 3), atol=1e-12)
