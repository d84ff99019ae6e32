"""xentlab.models.mlp: layer layout, embed/head split, errors."""

import pytest
import torch
from torch import nn

from xentlab.models.mlp import MLP, MLPConfig, build_mlp


def test_layout_and_shapes():
    m = build_mlp(16, (32, 8), 26, activation="tanh", batchnorm=True, dropout=0.1)
    kinds = [type(l) for l in m.body]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.Tanh, nn.Dropout] * 2
    x = torch.randn(5, 16)
    m.eval()
    assert m(x).shape == (5, 26) and m.embed(x).shape == (5, 8) and m.embed_dim == 8
    assert torch.allclose(m(x), m.head(m.embed(x)))


def test_headless_and_linear():
    m = MLP(MLPConfig(in_dim=4, hidden=(6,), out_dim=None))
    assert m.head is None and m(torch.randn(2, 4)).shape == (2, 6)
    lin = build_mlp(4, (), 3)
    assert len(lin.body) == 0 and lin(torch.randn(2, 4)).shape == (2, 3)
    x = torch.randn(2, 4)
    assert torch.allclose(lin(x), x @ lin.head.weight.T + lin.head.bias)


def test_seeded_init_is_deterministic():
    torch.manual_seed(0)
    a = build_mlp(3, (5,), 2)
    torch.manual_seed(0)
    b = build_mlp(3, (5,), 2)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_errors():
    with pytest.raises(ValueError, match="activation"):
        build_mlp(3, (4,), 2, activation="swishy")
    with pytest.raises(ValueError, match="widths"):
        build_mlp(3, (0,), 2)
    with pytest.raises(ValueError, match="dropout"):
        build_mlp(3, (4,), 2, dropout=1.0)
