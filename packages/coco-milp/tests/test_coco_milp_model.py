"""The pure-torch GNN: ICC two-hop mean by hand, GraphNorm, equivariance, shapes."""

import numpy as np
import pytest
import torch
from coco_milp.graph import encode
from coco_milp.instances import generate_set_cover
from coco_milp.model import GNNPolicy, GraphNorm, IntraConstraintCompetition, scatter_mean

from xentlab.testing import assert_close


def test_icc_two_hop_mean_by_hand():
    # constraints c0 = {v0, v1}, c1 = {v1, v2}, objective node c2 = {v0, v1, v2} (excluded), v3 isolated
    h = torch.tensor([[1.0], [3.0], [5.0], [7.0]], dtype=torch.float64)
    cons = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    var = torch.tensor([0, 1, 1, 2, 0, 1, 2])
    layer = IntraConstraintCompetition().double()
    # mean(c0) = 2, mean(c1) = 4; v0: 2, v1: (2 + 4) / 2 = 3, v2: 4, v3: no constraint -> 0
    expected = h - torch.tensor([[2.0], [3.0], [4.0], [0.0]], dtype=torch.float64)
    assert_close(layer(h, cons, var, n_cons=3), expected)
    assert layer.beta.item() == 1.0 and layer.beta.requires_grad


def test_scatter_mean_empty_is_zero():
    out = scatter_mean(torch.ones(2, 3), torch.tensor([0, 0]), 2)
    assert_close(out, torch.tensor([[1.0] * 3, [0.0] * 3]))


def test_graphnorm_standardises():
    x = torch.randn(50, 4, dtype=torch.float64) * 3 + 2
    y = GraphNorm(4).double()(x)
    assert_close(y.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-10)
    assert_close(y.var(0, unbiased=False), torch.ones(4, dtype=torch.float64), atol=1e-4)


@pytest.mark.parametrize("icc", [False, True])
def test_gnn_equivariant_to_variable_order(icc):
    torch.manual_seed(0)
    inst = generate_set_cover(15, 30, 0.15, np.random.default_rng(0))
    g = encode(inst)
    model = GNNPolicy(icc=icc).eval()
    out = model(g)
    assert out.shape == (30,)
    perm = torch.randperm(30)
    inv = torch.argsort(perm)
    g.var_feats = g.var_feats[perm]
    g.edge_index = torch.stack([g.edge_index[0], inv[g.edge_index[1]]])
    assert_close(model(g), out[perm], atol=1e-5, rtol=1e-4)
