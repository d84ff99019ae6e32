"""Properties of the HL-Gauss, two-hot and C51 targets against hand derivations and float64 references."""

import math

import pytest
import torch
from hlgauss_rl.targets import (
    DEFAULT_SIGMA_RATIO,
    atoms,
    bin_centres,
    c51_project,
    hl_gauss_edges,
    hl_gauss_probs,
    two_hot_probs,
)

from xentlab.testing import assert_close

V_MIN, V_MAX, M = -10.0, 10.0, 51
WIDTH = (V_MAX - V_MIN) / M


def _hl_gauss_reference(y: float, v_min: float, v_max: float, m: int, sigma: float) -> list[float]:
    """Float64 scalar reference written from the formula with math.erf, clipping y to the support."""
    y = min(max(y, v_min), v_max)
    edges = [v_min + (v_max - v_min) * i / m for i in range(m + 1)]
    cdf = [math.erf((z - y) / (math.sqrt(2) * sigma)) for z in edges]
    norm = cdf[-1] - cdf[0]
    return [(cdf[i + 1] - cdf[i]) / norm for i in range(m)]


def test_edges_and_centres_by_hand():
    # [0, 4] with 4 bins: edges 0,1,2,3,4; centres are the midpoints 0.5..3.5 (NOT (z[:-1]-z[1:])/2 = -0.5).
    edges = hl_gauss_edges(0.0, 4.0, 4, dtype=torch.float64)
    assert_close(edges, torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    assert_close(bin_centres(edges), torch.tensor([0.5, 1.5, 2.5, 3.5], dtype=torch.float64))
    assert_close(atoms(0.0, 4.0, 5, dtype=torch.float64), edges)


def test_hl_gauss_matches_float64_formula():
    ys = [-12.0, -10.0, -9.87, -3.3, 0.0, 0.1961, 4.5, 9.99, 10.0, 25.0]
    sigma = DEFAULT_SIGMA_RATIO * WIDTH
    edges = hl_gauss_edges(V_MIN, V_MAX, M, dtype=torch.float64)
    got = hl_gauss_probs(torch.tensor(ys, dtype=torch.float64), edges, sigma)
    want = torch.tensor([_hl_gauss_reference(y, V_MIN, V_MAX, M, sigma) for y in ys], dtype=torch.float64)
    assert_close(got, want, atol=1e-12, rtol=0, name="hl_gauss vs math.erf reference")


def test_hl_gauss_sums_to_one_and_is_finite_even_far_outside_support():
    y = torch.cat([torch.linspace(-1e6, 1e6, 101), torch.randn(200) * 20])
    p = hl_gauss_probs(y, hl_gauss_edges(V_MIN, V_MAX, M), DEFAULT_SIGMA_RATIO * WIDTH)
    assert torch.isfinite(p).all() and (p >= 0).all()
    assert_close(p.sum(-1), torch.ones(len(y)), atol=1e-5, rtol=0)


def test_unclipped_appendix_a_snippet_gives_nan_far_outside_support():
    # Why we clip: without clipping both erf terms of the normaliser saturate to -1 and 0/0 = NaN.
    edges = hl_gauss_edges(V_MIN, V_MAX, M)
    cdf = torch.special.erf((edges - 1e4) / (math.sqrt(2) * 0.75 * WIDTH))
    assert torch.isnan((cdf[1:] - cdf[:-1]) / (cdf[-1] - cdf[0])).all()


def test_hl_gauss_mean_recovers_scalar_within_half_a_bin():
    edges = hl_gauss_edges(V_MIN, V_MAX, M, dtype=torch.float64)
    sigma = DEFAULT_SIGMA_RATIO * WIDTH
    # Well inside the support (3 sigma from each end) the renormalisation is negligible.
    y = torch.linspace(V_MIN + 3 * sigma, V_MAX - 3 * sigma, 997, dtype=torch.float64)
    mean = (hl_gauss_probs(y, edges, sigma) * bin_centres(edges)).sum(-1)
    assert (mean - y).abs().max() <= WIDTH / 2


def test_hl_gauss_small_sigma_is_one_hot():
    edges = hl_gauss_edges(V_MIN, V_MAX, M, dtype=torch.float64)
    y = torch.tensor([-9.9, -0.05, 3.3, 9.9], dtype=torch.float64)  # none on an edge
    p = hl_gauss_probs(y, edges, sigma=1e-6 * WIDTH)
    expected_bin = ((y - V_MIN) / WIDTH).floor().long()
    assert_close(p, torch.nn.functional.one_hot(expected_bin, M).double(), atol=1e-12, rtol=0)


def test_hl_gauss_matches_hl_gauss_pytorch_package():
    """Independent oracle: PyPI `hl-gauss-pytorch` (lucidrains) with the paper's ratio 0.75 (its default is 2.0)."""
    hlg = pytest.importorskip("hl_gauss_pytorch")
    oracle = hlg.HLGaussLoss(
        V_MIN, V_MAX, M, sigma_to_bin_ratio=0.75, clamp_to_range=True, warn_out_of_range=False
    )
    y = torch.tensor([-30.0, -10.0, -7.77, -0.1, 0.0, 2.5, 9.5, 10.0, 30.0])
    ours = hl_gauss_probs(y, hl_gauss_edges(V_MIN, V_MAX, M), DEFAULT_SIGMA_RATIO * WIDTH)
    assert_close(ours, oracle.transform_to_probs(y), atol=1e-6, rtol=0, name="vs hl-gauss-pytorch probs")
    assert_close(bin_centres(hl_gauss_edges(V_MIN, V_MAX, M)), oracle.centers, atol=1e-6, rtol=0)
    assert abs(oracle.sigma - 0.75 * WIDTH) < 1e-6


def test_two_hot_sums_to_one_mean_exact_two_nonzeros():
    z = atoms(V_MIN, V_MAX, M, dtype=torch.float64)
    y = torch.linspace(V_MIN, V_MAX, 1001, dtype=torch.float64) + 1e-3 * torch.rand(1001, dtype=torch.float64)
    y = y.clamp(V_MIN, V_MAX)
    p = two_hot_probs(y, z)
    assert_close(p.sum(-1), torch.ones_like(y), atol=1e-12, rtol=0)
    assert_close((p * z).sum(-1), y, atol=1e-12, rtol=0, name="two-hot mean")
    assert ((p > 0).sum(-1) <= 2).all()


def test_two_hot_by_hand_and_clipping():
    z = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    # y = 1.25 lies between atoms 1 and 2: (2 - 1.25)/1 = 0.75 to atom 1, (1.25 - 1)/1 = 0.25 to atom 2.
    assert_close(
        two_hot_probs(torch.tensor([1.25], dtype=torch.float64), z),
        torch.tensor([[0.0, 0.75, 0.25]]).double(),
    )
    # Out of the support: clipped to the end atoms.
    got = two_hot_probs(torch.tensor([-5.0, 7.0, 1.0], dtype=torch.float64), z)
    assert_close(got, torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]], dtype=torch.float64))


def _c51_reference(p, r, done, gamma, z):
    """Bellemare et al. (2017) Algorithm 1 written as a plain loop with floor/ceil (float64)."""
    m = len(z)
    dz = (z[-1] - z[0]) / (m - 1)
    out = [0.0] * m
    for i in range(m):
        tz = min(max(r + (0.0 if done else gamma) * z[i], z[0]), z[-1])
        b = (tz - z[0]) / dz
        lo, hi = math.floor(b), math.ceil(b)
        if lo == hi:  # lands exactly on an atom
            out[lo] += p[i]
        else:
            out[lo] += p[i] * (hi - b)
            out[hi] += p[i] * (b - lo)
    return out


def test_c51_projection_matches_algorithm_1_and_keeps_mass():
    g = torch.Generator().manual_seed(0)
    z = atoms(-3.0, 3.0, 13, dtype=torch.float64)
    p = torch.rand(64, 13, generator=g, dtype=torch.float64).softmax(-1)
    r = torch.randn(64, generator=g, dtype=torch.float64) * 2
    d = (torch.rand(64, generator=g) < 0.2).double()
    r[:4] = torch.tensor([0.0, 0.5, -10.0, 10.0], dtype=torch.float64)  # on atoms / far outside
    got = c51_project(p, r, d, 0.9, z)
    want = torch.tensor(
        [_c51_reference(p[b].tolist(), r[b].item(), bool(d[b]), 0.9, z.tolist()) for b in range(64)],
        dtype=torch.float64,
    )
    assert_close(got, want, atol=1e-12, rtol=0, name="c51 vs Algorithm 1 loop")
    assert_close(got.sum(-1), torch.ones(64, dtype=torch.float64), atol=1e-12, rtol=0, name="mass")


def test_c51_projection_by_hand():
    z = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    p = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]], dtype=torch.float64)
    # Row 0: all mass at z=1, r=0.5, gamma=1 -> 1.5: half to atom 1, half to atom 2.
    # Row 1: terminal, r=0.25 -> every atom moves to 0.25: 0.75 to atom 0, 0.25 to atom 1.
    got = c51_project(p, torch.tensor([0.5, 0.25]).double(), torch.tensor([0.0, 1.0]).double(), 1.0, z)
    assert_close(got, torch.tensor([[0.0, 0.5, 0.5], [0.75, 0.25, 0.0]], dtype=torch.float64))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="v_min < v_max"):
        hl_gauss_edges(1.0, 1.0, 10)
    with pytest.raises(ValueError, match="at least 2"):
        atoms(0.0, 1.0, 1)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        hl_gauss_probs(torch.zeros(3), hl_gauss_edges(0.0, 1.0, 4), 0.0)
    with pytest.raises(TypeError, match="floating"):
        two_hot_probs(torch.zeros(3, dtype=torch.long), atoms(0.0, 1.0, 4))
    with pytest.raises(ValueError, match="next_probs must be"):
        c51_project(torch.ones(2, 5) / 5, torch.zeros(2), torch.zeros(2), 0.9, atoms(0.0, 1.0, 4))
