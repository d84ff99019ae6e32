"""xentlab.metrics.pass_at_n_exact: 1 - (1 - p)^n, from probabilities or log-probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xentlab.metrics import pass_at_k, pass_at_n_exact


def test_hand_values():
    # p = 1/2, n = 2: 1 - 1/4; p = 0.1, n = 4: 1 - 0.9^4 = 0.3439; p = 0 -> 0; p = 1 -> 1
    got = pass_at_n_exact([0.5, 0.1, 0.0, 1.0], 4)
    np.testing.assert_allclose(got, [1 - 0.5**4, 0.3439, 0.0, 1.0], rtol=1e-14)
    assert pass_at_n_exact(0.5, 2) == pytest.approx(0.75, rel=1e-15)
    assert pass_at_n_exact(0.3, 1) == pytest.approx(0.3, rel=1e-15)  # n = 1 is the probability itself


def test_log_prob_input_matches_and_is_accurate_at_the_ends():
    p = np.array([1e-30, 1e-3, 0.2, 0.7, 0.999])
    np.testing.assert_allclose(
        pass_at_n_exact(np.log(p), 16, log_prob=True), pass_at_n_exact(p, 16), rtol=1e-12
    )
    # tiny p: n p (no cancellation to 0); log p = -1e-12: 1 - p = 1e-12 -> 1 - 1e-24 (rounds to 1)
    # abs=0: pytest.approx's default absolute tolerance (1e-12) would also accept 0 for this 4.6e-33
    assert pass_at_n_exact(-80.0, 256, log_prob=True) == pytest.approx(
        256 * math.exp(-80.0), rel=1e-12, abs=0
    )
    assert pass_at_n_exact(0.0, 256, log_prob=True) == 1.0
    assert pass_at_n_exact(-1e-12, 2, log_prob=True) == pytest.approx(1.0, abs=1e-20)


def test_tiny_p_keeps_its_value():
    # 1 - (1 - p)^n = n p to first order; 1 - exp(n log(1 - p)) would round to 0 for p << 1e-16.
    # abs=0: pytest.approx's default absolute tolerance (1e-12) would accept 0 here.
    assert pass_at_n_exact(1e-30, 16) == pytest.approx(1.6e-29, rel=1e-12, abs=0)


def test_negative_p_is_rejected():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pass_at_n_exact([0.5, -0.1], 4)


def test_monotone_in_n_and_p():
    p = np.linspace(0, 1, 11)
    a, b = pass_at_n_exact(p, 4), pass_at_n_exact(p, 64)
    assert np.all(b >= a) and np.all(np.diff(a) >= 0)


def test_unbiased_estimator_has_the_exact_value_as_expectation():
    # c ~ Binomial(n, p): E[pass@k estimate] = 1 - (1-p)^k exactly (sum over the binomial pmf)
    n, p = 20, 0.13
    pmf = np.array([math.comb(n, c) * p**c * (1 - p) ** (n - c) for c in range(n + 1)])
    for k in (1, 4, 16):
        expected = float(np.sum(pmf * pass_at_k(np.full(n + 1, n), np.arange(n + 1), k)))
        assert expected == pytest.approx(float(pass_at_n_exact(p, k)), rel=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="positive integer"):
        pass_at_n_exact(0.5, 0)
    with pytest.raises(ValueError, match="positive integer"):
        pass_at_n_exact(0.5, 1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pass_at_n_exact([0.5, 1.2], 4)
    with pytest.raises(ValueError, match="<= 0"):
        pass_at_n_exact(0.1, 4, log_prob=True)
    with pytest.raises(ValueError, match="NaN"):
        pass_at_n_exact(float("nan"), 4)
