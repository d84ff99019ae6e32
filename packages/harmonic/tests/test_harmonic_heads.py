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
        # the last three end with the layers' `dist_clamped` step: + eps (1e-4)
        "bray_curtis": lambda w: _l1(x, w) / ((x.sum(1)[:, None] + w.sum(1)[None]).abs() + 1e-4) + 1e-4,
        # log-diagonal 0 -> unit precision (+1e-4): sqrt(||x - w||^2 (1 + 1e-4) + 1e-4)
        "mahalanobis_diag": lambda w: torch.sqrt(_sq(x, w) * (1 + 1e-4) + 1e-4) + 1e-4,
        # Cholesky factor 0.1 I at init (0.1 rounded to float32, then cast) -> P = (0.1^2 + 1e-4) I
        "mahalanobis_full": lambda w: (
            torch.sqrt(_sq(x, w) * (float(torch.tensor(0.1)) ** 2 + 1e-4) + 1e-4) + 1e-4
        ),
    }.items():
        head = _head(kind)
        assert_close(head(x), ref(head.weight.detach()), rtol=1e-9, atol=1e-9, name=kind)


def test_minkowski_and_chebyshev_hand_values():
    head = _head("minkowski")
    x = _x()
    w = head.weight.detach()
    eps = 1e-4
    ref = (((x[:, None] - w[None]).abs() + eps) ** 1.5).sum(-1).add(eps) ** (1 / 1.5) + eps
    assert_close(head(x), ref, name="minkowski")
    cheb = _head("chebyshev")
    diff = (x[:, None] - cheb.weight.detach()[None]).abs()
    z = diff / (diff.std(-1, keepdim=True) + eps)
    assert_close(cheb(x), (torch.softmax(z, -1) * z).sum(-1) + eps, name="chebyshev")
    # the smooth max lies between the mean and the max of the normalised differences (+ eps)
    assert torch.all(cheb(x) <= z.max(-1).values + eps + 1e-12) and torch.all(cheb(x) >= z.mean(-1) - 1e-12)


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


# ---- fidelity to the official layers (vision/models/distlayers.py, with the eps = 1e-4 that
# SimpleImageMLP_WithDistLayer and regular_config's shared_distance_params pass to every layer)


def test_official_eps_and_final_clamp():
    """Chebyshev and Mahalanobis run with eps = max(1e-4, layer floor) = 1e-4 there, and every layer with a
    `dist_clamped` step returns clamp(d + eps, eps[, 1e6]) -- the distance *plus* eps, not d clamped."""
    x = _x()
    eps = 1e-4
    # Chebyshev: z = |x - w| / (std(|x - w|) + eps); d = sum softmax(z) z; then clamp(d + eps, eps, 1e6)
    cheb = _head("chebyshev")
    diff = (x[:, None] - cheb.weight.detach()[None]).abs()
    z = diff / (diff.std(-1, keepdim=True) + eps)
    assert_close(cheb(x), ((torch.softmax(z, -1) * z).sum(-1) + eps).clamp(eps, 1e6), rtol=1e-12, atol=1e-12)
    # Minkowski: clamp(dist + eps, min=eps), dist = (sum (|x - w| + eps)^p + eps)^(1/p)
    mink = _head("minkowski")
    w = mink.weight.detach()
    dist = (((x[:, None] - w[None]).abs() + eps) ** 1.5).sum(-1).add(eps) ** (1 / 1.5)
    assert_close(mink(x), dist + eps, rtol=1e-12, atol=1e-12)
    # Bray-Curtis: clamp(num / clamp(|sum(x + w)| + eps, 10 eps) + eps, eps, 1e6)
    bc = _head("bray_curtis")
    w = bc.weight.detach()
    den = ((x.sum(1)[:, None] + w.sum(1)[None]).abs() + eps).clamp_min(10 * eps)
    assert_close(bc(x), _l1(x, w) / den + eps, rtol=1e-12, atol=1e-12)
    # Mahalanobis diagonal (log-precision 0): sqrt(||x - w||^2 (1 + eps) + eps) + eps
    md = _head("mahalanobis_diag")
    assert_close(
        md(x), torch.sqrt(_sq(x, md.weight.detach()) * (1 + eps) + eps) + eps, rtol=1e-12, atol=1e-12
    )
    # Mahalanobis Cholesky (L = 0.1 I): P = (0.1^2 + eps) I
    mf = _head("mahalanobis_full")
    c = float(torch.tensor(0.1)) ** 2 + eps
    assert_close(mf(x), torch.sqrt(_sq(x, mf.weight.detach()) * c + eps) + eps, rtol=1e-12, atol=1e-12)


def test_no_clamp_on_euclidean_manhattan_cosine():
    """The official Euclidean, Manhattan and cosine layers return (d / min d)^-n with no clamp: a squared
    distance above 1e6 must not be cut (a clamp would also zero its gradient)."""
    head = _head("euclidean")
    x = torch.full((1, 6), 1000.0, dtype=torch.float64)  # ||x - w||^2 ~ 6e6
    ref = _sq(x, head.weight.detach()) + 1e-4
    assert float(ref.min()) > 1e6
    assert_close(head(x), ref, rtol=1e-12, atol=1e-9)
    man = _head("manhattan")
    x = torch.full((1, 6), 3e5, dtype=torch.float64)
    assert_close(man(x), _l1(x, man.weight.detach()) + 1e-4, rtol=1e-12, atol=1e-9)
