"""The unbiased pass@k estimator against exact combinatorics (fractions + math.comb)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from xentlab.metrics.pass_at_k import mean_pass_at_k, pass_at_k


def exact(n: int, c: int, k: int) -> Fraction:
    # 1 - C(n-c, k) / C(n, k): the probability that k draws without replacement hit a correct one
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def test_matches_exact_combinatorics_on_a_grid():
    for n in (1, 2, 5, 16, 40):
        for c in range(n + 1):
            for k in range(1, n + 1):
                got = float(pass_at_k(n, c, k))
                assert got == pytest.approx(float(exact(n, c, k)), abs=1e-12), (n, c, k)


def test_k1_is_c_over_n_and_vectorised():
    n = np.array([16, 16, 16, 10])
    c = np.array([0, 3, 16, 7])
    np.testing.assert_allclose(pass_at_k(n, c, 1), c / n, atol=1e-15)
    out = pass_at_k(n, c, 4)
    assert out.shape == (4,)
    np.testing.assert_allclose(out, [float(exact(int(a), int(b), 4)) for a, b in zip(n, c)], atol=1e-12)


def test_large_n_is_stable():
    # C(1000, 500) overflows float64; the product form does not
    got = float(pass_at_k(1000, 3, 500))
    assert got == pytest.approx(float(exact(1000, 3, 500)), abs=1e-12)


def test_mean_over_problems():
    res = mean_pass_at_k([16, 16], [0, 8], [1, 16])
    assert res[1] == pytest.approx(0.25) and res[16] == pytest.approx(0.5)


def test_mean_over_three_problems_is_the_mean_not_the_median():
    # pass@1 = c / n = 0, 1/5, 1 -> mean 0.4 (the median would be 0.2); pass@2 of (5, 1) is
    # 1 - C(4, 2) / C(5, 2) = 0.4, so pass@2 = (0 + 0.4 + 1) / 3.
    res = mean_pass_at_k([5, 5, 5], [0, 1, 5], [1, 2])
    assert res == {1: pytest.approx(0.4, abs=1e-15), 2: pytest.approx(1.4 / 3, abs=1e-15)}


def test_errors():
    with pytest.raises(ValueError, match="exceeds"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="c > n"):
        pass_at_k([4, 4], [1, 5], 1)
    with pytest.raises(ValueError, match="positive"):
        pass_at_k(4, 1, 0)
    with pytest.raises(ValueError, match=">= 0"):
        pass_at_k(4, -1, 1)
    with pytest.raises(TypeError):
        pass_at_k(4.0, 1, 1)
