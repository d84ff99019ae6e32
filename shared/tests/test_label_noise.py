"""xentlab.data.label_noise: rates, the 'may redraw the true class' convention, maps, seeding."""

import numpy as np
import pytest
import torch

from xentlab.data.label_noise import (
    LETTER_PAIRS,
    class_dependent_noise,
    next_class_mapping,
    pair_mapping,
    transition_matrix,
    uniform_noise,
)


def test_uniform_noise_rate_includes_redraws_of_the_true_class():
    k, n, rho = 26, 200_000, 0.6
    y = np.random.default_rng(0).integers(0, k, n)
    noisy = uniform_noise(y, k, rho, seed=1)
    # a selected label is redrawn from all K classes, so only rho*(K-1)/K of the labels change
    changed = (noisy != y).mean()
    assert abs(changed - rho * (k - 1) / k) < 0.005
    flipped = uniform_noise(y, k, rho, seed=1, exclude_true=True)
    assert abs((flipped != y).mean() - rho) < 0.005


def test_empirical_transition_matches_expected():
    k, n, rho = 4, 100_000, 0.3
    y = np.repeat(np.arange(k), n // k)
    noisy = uniform_noise(y, k, rho, seed=2)
    emp = np.zeros((k, k))
    np.add.at(emp, (y, noisy), 1)
    emp /= emp.sum(1, keepdims=True)
    np.testing.assert_allclose(emp, transition_matrix(k, rho, kind="uniform"), atol=0.01)


def test_class_dependent_letter_pairs():
    m = pair_mapping(26, LETTER_PAIRS)
    assert m[1] == 3 and m[3] == 1 and m[0] == 0 and m[25] == 25  # B<->D; A, Z untouched
    np.testing.assert_array_equal(m[m], np.arange(26))  # swaps are involutions
    y = np.arange(26).repeat(2000)
    noisy = class_dependent_noise(y, m, 0.3, seed=0)
    assert set(np.unique(noisy[y == 0])) == {0}
    frac = (noisy[y == 1] == 3).mean()
    assert abs(frac - 0.3) < 0.03
    assert np.all((noisy == y) | (noisy == m[y]))
    np.testing.assert_array_equal(next_class_mapping(3), [1, 2, 0])


def test_seeded_type_preserving_and_not_in_place():
    y = torch.arange(10).repeat(10)
    before = y.clone()
    a = uniform_noise(y, 10, 0.5, seed=7)
    b = uniform_noise(y, 10, 0.5, seed=7)
    assert isinstance(a, torch.Tensor) and torch.equal(a, b) and torch.equal(y, before)
    assert not torch.equal(a, uniform_noise(y, 10, 0.5, seed=8))
    assert torch.equal(uniform_noise(y, 10, 0.0, seed=0), y)


def test_errors():
    with pytest.raises(ValueError, match="noise rate"):
        uniform_noise(np.array([0, 1]), 2, 1.5, seed=0)
    with pytest.raises(ValueError, match="labels must lie"):
        uniform_noise(np.array([0, 5]), 3, 0.1, seed=0)
    with pytest.raises(ValueError, match="disjoint"):
        pair_mapping(4, [(0, 1), (1, 2)])
