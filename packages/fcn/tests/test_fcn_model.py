"""Cross layer, ECN/LCN interaction order, Tri-BCE, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fcn.loss import tri_bce
from fcn.model import FCN, CrossNetwork, FieldEmbedding, SelfMaskCrossLayer

from xentlab.testing import assert_close, check_gradients


def _layer64(dim: int, seed: int = 0) -> SelfMaskCrossLayer:
    torch.manual_seed(seed)
    layer = SelfMaskCrossLayer(dim, dropout=0.0).double().eval()
    with torch.no_grad():  # non-trivial LayerNorm affine so that the test sees gamma/beta
        layer.norm.weight.uniform_(0.5, 1.5)
        layer.norm.bias.uniform_(-0.3, 0.3)
    return layer


def test_cross_layer_matches_float64_hand_computation():
    layer = _layer64(6)
    rng = np.random.default_rng(0)
    x, x0 = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    W = layer.w.weight.detach().numpy()
    g, beta, b = (p.detach().numpy() for p in (layer.norm.weight, layer.norm.bias, layer.b))
    # H = W x; LN over the d/2 entries (biased variance, eps 1e-5); M = ReLU(LN(H)); H' = [H, H*M]
    h = x @ W.T
    ln = (h - h.mean(1, keepdims=True)) / np.sqrt(h.var(1, keepdims=True) + 1e-5) * g + beta
    h_full = np.concatenate([h, h * np.maximum(ln, 0.0)], axis=1)
    for anchor in (x, x0):  # ECN uses x_l, LCN uses x_0 as the anchor
        expected = anchor * (h_full + b) + x
        got = layer(torch.from_numpy(x), torch.from_numpy(anchor))
        assert_close(got, torch.from_numpy(expected), name="cross layer")


def _poly_coeffs(net: CrossNetwork, x: torch.Tensor, degree: int = 6) -> np.ndarray:
    """Coefficients c_k of one output coordinate of net.features(t * x) as a polynomial in t > 0.

    ReLU(LN(t h)) = ReLU(LN(h)) for t > 0 (LN is scale invariant up to eps, set ~0 here), so the mask
    is constant in t and each layer's output is a polynomial in t."""
    ts = np.linspace(0.5, 2.0, degree + 1)
    ys = np.array([net.features(t * x)[0, 0].item() for t in ts])
    return np.linalg.solve(np.vander(ts, degree + 1, increasing=True), ys)


@pytest.mark.parametrize(
    ("kind", "layers", "order"), [("exponential", 1, 2), ("exponential", 2, 4), ("linear", 2, 3)]
)
def test_interaction_order(kind, layers, order):
    # ECN: x_{l+1} = x_l*(H'+b)+x_l doubles the order (1 -> 2 -> 4); LCN: x_0*(H'+b)+x_l adds one (-> 3).
    torch.manual_seed(1)
    net = CrossNetwork(4, layers, kind).double().eval()
    for layer in net.layers:
        layer.norm.eps = 1e-30
    c = _poly_coeffs(net, torch.randn(1, 4, dtype=torch.float64))
    scale = np.abs(c).max()
    assert abs(c[order]) > 1e-3 * scale, f"degree-{order} coefficient vanished: {c}"
    assert np.all(np.abs(c[order + 1 :]) < 1e-7 * scale), f"terms above degree {order}: {c}"


def _bce_grad(z, y):  # d/dz mean BCE(sigmoid(z), y) = (sigmoid(z) - y) / n
    return (torch.sigmoid(z) - y) / len(y)


@pytest.mark.parametrize("detach", [False, True])
def test_tri_bce_value_and_gradient_through_weights(detach):
    y = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    z = torch.tensor([2.0, -2.0, 1.5, -1.0], dtype=torch.float64, requires_grad=True)  # good fused head
    zd = torch.tensor([0.1, 0.3, -0.2, 0.5], dtype=torch.float64, requires_grad=True)  # worse heads: w > 0
    zs = torch.tensor([-0.5, 0.2, 0.3, 0.1], dtype=torch.float64, requires_grad=True)
    L = tri_bce(z, zd, zs, y, detach_weights=detach)
    l, ld, ls = (F.binary_cross_entropy_with_logits(t, y) for t in (z, zd, zs))
    wd, ws = ld - l, ls - l
    assert wd > 0 and ws > 0
    assert_close(L, l + wd * ld + ws * ls, name="Tri-BCE value")
    L.backward()
    with torch.no_grad():
        if detach:  # weights are constants: dL/dz = g(z), dL/dz_d = w_d g(z_d)
            exp_z, exp_zd, exp_zs = _bce_grad(z, y), wd * _bce_grad(zd, y), ws * _bce_grad(zs, y)
        else:  # L = l + (ld - l) ld + (ls - l) ls: dL/dz = g(z)(1 - ld - ls), dL/dz_d = g(z_d)(2 ld - l)
            exp_z = _bce_grad(z, y) * (1 - ld - ls)
            exp_zd, exp_zs = _bce_grad(zd, y) * (2 * ld - l), _bce_grad(zs, y) * (2 * ls - l)
    for got, exp, n in ((z.grad, exp_z, "z"), (zd.grad, exp_zd, "z_d"), (zs.grad, exp_zs, "z_s")):
        assert_close(got, exp, name=f"dL/d{n}")


def test_tri_bce_default_keeps_the_gradient_through_the_weights():
    # The official add_loss does not detach w_D, w_S, and train.py calls tri_bce with the default:
    # the default must give the undetached gradient dL/dz_d = g(z_d)(2 ld - l) (derivation above).
    y = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    z = torch.tensor([2.0, -2.0, 1.5], dtype=torch.float64)
    zd = torch.tensor([0.1, 0.3, -0.2], dtype=torch.float64, requires_grad=True)
    zs = torch.tensor([-0.5, 0.2, 0.3], dtype=torch.float64)
    tri_bce(z, zd, zs, y).backward()
    with torch.no_grad():
        l, ld = F.binary_cross_entropy_with_logits(z, y), F.binary_cross_entropy_with_logits(zd, y)
        assert ld > l  # w_D > 0, so the weight's own gradient is live
        expected = _bce_grad(zd, y) * (2 * ld - l)
    assert_close(zd.grad, expected, name="dL/dz_d (default)")


def test_tri_bce_weights_clip_at_zero():
    # heads better than the fused prediction get weight max(0, .) = 0: L = BCE(y_hat)
    y = torch.tensor([1.0, 0.0])
    z, good = torch.tensor([0.0, 0.0]), torch.tensor([3.0, -3.0])
    assert_close(tri_bce(z, good, good, y), F.binary_cross_entropy_with_logits(z, y))


def test_gradcheck_fcn_and_tri_bce():
    torch.manual_seed(0)
    model = FCN([3, 4], emb_dim=2, ecn_layers=2, lcn_layers=2, ecn_dropout=0.0, lcn_dropout=0.0).double()
    x = torch.tensor([[0, 1], [2, 3], [1, 0]])
    x0 = model.embedding(x).detach()
    check_gradients(lambda e: torch.stack([model.ecn(e), model.lcn(e)]), x0)
    y = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    check_gradients(lambda a, b, c: tri_bce(a, b, c, y), torch.randn(3), torch.randn(3), torch.randn(3))


def test_clear_errors():
    with pytest.raises(ValueError, match="even"):
        SelfMaskCrossLayer(5)
    with pytest.raises(ValueError, match="kind"):
        CrossNetwork(4, 1, "quadratic")
    with pytest.raises(ValueError, match="num_layers"):
        CrossNetwork(4, 0, "linear")
    with pytest.raises(ValueError, match="shapes differ"):
        tri_bce(torch.zeros(3), torch.zeros(3), torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="field indices"):
        FieldEmbedding([3, 4], 2)(torch.zeros(2, 3, dtype=torch.long))
