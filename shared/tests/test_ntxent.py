"""NT-Xent (moved from gsimclr): G-SimCLR notebook's construction in float64 loops, a hand-derived value, gradients, errors."""

import math

import pytest
import torch

from xentlab.losses.ntxent import OFFICIAL_TEMPERATURE, nt_xent
from xentlab.testing import assert_close, check_gradients


def notebook_reference(z_a, z_b, tau):
    """The official train_step, spelled out: for each anchor set (zis, then zjs) and each image k, logits are
    [zis_k . zjs_k, then zis_k (or zjs_k) . every column of concat(zjs, zis) except columns k and B+k]; sparse CE
    with label 0, summed over both anchor sets, divided by 2B."""
    zi = torch.nn.functional.normalize(z_a.double(), dim=1)
    zj = torch.nn.functional.normalize(z_b.double(), dim=1)
    b = len(zi)
    negatives = torch.cat([zj, zi])
    total = 0.0
    for anchors in (zi, zj):
        for k in range(b):
            l_pos = (
                float(zi[k] @ zj[k]) / tau
            )  # the notebook reuses l_pos = sim(zis, zjs) for both anchor sets
            l_neg = [float(anchors[k] @ negatives[c]) / tau for c in range(2 * b) if c not in (k, b + k)]
            logits = [l_pos, *l_neg]
            total += -(logits[0] - math.log(sum(math.exp(v) for v in logits)))
    return total / (2 * b)


@pytest.mark.parametrize("b,d,tau", [(2, 3, 0.1), (5, 4, 0.1), (8, 50, 0.5)])
def test_matches_notebook_loop_in_float64(b, d, tau):
    g = torch.Generator().manual_seed(b * 100 + d)
    z_a, z_b = torch.randn(b, d, generator=g), torch.randn(b, d, generator=g)
    expected = notebook_reference(z_a, z_b, tau)
    assert_close(
        nt_xent(z_a.double(), z_b.double(), tau),
        torch.tensor(expected, dtype=torch.float64),
        rtol=1e-10,
        atol=1e-12,
    )
    assert_close(nt_xent(z_a, z_b, tau), torch.tensor(expected, dtype=torch.float32), rtol=1e-5, atol=1e-6)


def test_hand_derived_orthogonal_images():
    # B = 2, both views of image k equal e_k: each anchor's positive has cosine 1 and its two negatives (both views
    # of the other image) cosine 0, so every l_i = -log(e^{1/tau} / (e^{1/tau} + 2)) = log(1 + 2 e^{-1/tau}).
    z = torch.eye(2, dtype=torch.float64)
    tau = 0.5
    assert_close(
        nt_xent(z, 3 * z, tau), torch.tensor(math.log(1 + 2 * math.exp(-1 / tau)), dtype=torch.float64)
    )


def test_default_temperature_is_official():
    assert OFFICIAL_TEMPERATURE == 0.1
    z_a, z_b = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    assert_close(nt_xent(z_a, z_b), torch.tensor(notebook_reference(z_a, z_b, 0.1), dtype=torch.float64))


def test_views_are_symmetric():
    z_a, z_b = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    assert_close(nt_xent(z_a, z_b), nt_xent(z_b, z_a))


def test_gradcheck():
    g = torch.Generator().manual_seed(0)
    z_a = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    z_b = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    check_gradients(lambda a, b: nt_xent(a, b, 0.1), z_a, z_b)


def test_clear_errors():
    with pytest.raises(ValueError, match="one shape"):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="B >= 2"):
        nt_xent(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(4, 3), torch.randn(4, 3), 0.0)
