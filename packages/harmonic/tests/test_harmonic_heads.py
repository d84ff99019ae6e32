"""Distance heads against float64 references, the harmonic probabilities, gradients and errors."""

import pytest
import torch
from harmonic.heads import DISTANCES, DistanceHead, HarmonicClassifier

from xentlab.models.mlp import build_mlp
from xentlab.testing import assert_close, check_gradients


def _head(kind, n=1.0, seed=0):
    torch.manual_seed(seed)
    return DistanceHead(6, 4, kind, n=n).double()


def _x(seed=1):
    return torch.randn(5, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _sq(x, w):  # explicit float64 references (torch.cdist's matmul path is only ~1e-8 accurate)
    return ((x[:, None] - w[None]) ** 2).sum(-1)


def _l1(x, w):
    return (x[:, None] - w[None]).abs().sum(-1)


def test_distances_match_references():
    x = _x()
    for kind, ref in {
        "euclidean": lambda w: _sq(x, w) + 1e-4,  # squared distance, as Baek et al.
        "manhattan": lambda w: _l1(x, w) + 1e-4,
        "cosine": lambda w: 1 - torch.nn.functional.cosine_similarity(x[:, None], w[None], dim=-1) + 1e-4,
        "bray_curtis": lambda w: _l1(x, w) / ((x.sum(1)[:, None] + w.sum(1)[None]).abs() + 1e-4),
        # log-diagonal 0 -> unit precision (+1e-6): sqrt(||x - w||^2 (1 + 1e-6) + 1e-6)
        "mahalanobis_diag": lambda w: torch.sqrt(_sq(x, w) * (1 + 1e-6) + 1e-6),
        # Cholesky factor 0.1 I at init (0.1 rounded to float32, then cast) -> P = (0.1^2 + 1e-6) I
        "mahalanobis_full": lambda w: torch.sqrt(_sq(x, w) * (float(torch.tensor(0.1)) ** 2 + 1e-6) + 1e-6),
    }.items():
        head = _head(kind)
        assert_close(head(x), ref(head.weight.detach()).clamp_min(1e-8), rtol=1e-9, atol=1e-9, name=kind)


def test_minkowski_and_chebyshev_hand_values():
    head = _head("minkowski")
    x = _x()
    w = head.weight.detach()
    eps = 1e-4
    ref = (((x[:, None] - w[None]).abs() + eps) ** 1.5).sum(-1).add(eps) ** (1 / 1.5)
    assert_close(head(x), ref, name="minkowski")
    cheb = _head("chebyshev")
    diff = (x[:, None] - cheb.weight.detach()[None]).abs()
    z = diff / (diff.std(-1, keepdim=True) + 1e-8)
    assert_close(cheb(x), (torch.softmax(z, -1) * z).sum(-1), name="chebyshev")
    # the smooth max lies between the mean and the max of the normalised differences
    assert torch.all(cheb(x) <= z.max(-1).values + 1e-12) and torch.all(cheb(x) >= z.mean(-1) - 1e-12)


@pytest.mark.parametrize("kind", DISTANCES)
def test_harmonic_probabilities(kind):
    head = _head(kind, n=2.0)
    x = _x()
    d = head(x)
    p_ref = d**-2.0 / (d**-2.0).sum(1, keepdim=True)  # p_c = d_c^-n / sum_j d_j^-n
    assert_close(head.logits(x), torch.log(p_ref + 1e-8), name=kind)
    assert torch.all(d > 0)


def test_gradcheck_and_training_step():
    x = _x()
    for kind in ("euclidean", "cosine", "bray_curtis", "mahalanobis_full"):
        head = _head(kind)
        assert check_gradients(lambda z, head=head: head.logits(z), x)
    torch.manual_seed(0)
    model = HarmonicClassifier(build_mlp(6, (8,), None), DistanceHead(8, 3, "cosine"))
    loss = torch.nn.functional.nll_loss(model(x.float()), torch.tensor([0, 1, 2, 0, 1]))
    loss.backward()
    assert model.head.weight.grad is not None and torch.isfinite(loss)


def test_errors():
    with pytest.raises(ValueError, match="distance must be one of"):
        DistanceHead(3, 2, "hamming")
    with pytest.raises(ValueError, match="harmonic exponent"):
        DistanceHead(3, 2, "cosine", n=0)
