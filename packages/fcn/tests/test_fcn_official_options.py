"""The two audit findings against the official code (README "Known defects, not yet rerun"):

1. x_0 layout. The official ``MultiHeadFeatureEmbedding`` (src/ECN.py, src/FCNv1.py; 1 head) splits every
   field embedding in two halves and concatenates [first halves of all fields, second halves of all fields].
   The cross layer multiplies coordinate j of x by H_j and coordinate j + d/2 by (H * M)_j, so in the
   official layout the two coordinates that share row j of W are the two halves of ONE field; in the
   field-contiguous layout they belong to fields f and f + F/2. The two layouts are different models.
2. Initialisation. FuxiCTR ``BaseModel.reset_parameters`` (called in the official model's __init__):
   xavier_normal_ on every nn.Linear weight, bias filled with 0; embeddings N(0, 1e-4^2); b_l stays U(0, 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from fcn.model import FCN, FieldEmbedding, SingleCross, fuxictr_reset_parameters
from fcn.train import build_model

from xentlab.testing import assert_close, load_reproduce

VOCABS = [5, 7, 3, 4]


def _embed(layout: str) -> FieldEmbedding:
    torch.manual_seed(0)
    return FieldEmbedding(VOCABS, 4, layout=layout).double()


def test_official_layout_is_first_halves_then_second_halves():
    emb = _embed("halves")
    x = torch.tensor([[1, 2, 0, 3], [4, 6, 2, 0]])
    tables = [t.weight.detach().numpy() for t in emb.tables]
    # hand derivation: e_f = table_f[x_f] in R^4; official x_0 = [e_0[:2], e_1[:2], e_2[:2], e_3[:2],
    # e_0[2:], e_1[2:], e_2[2:], e_3[2:]]
    rows = []
    for r in x.numpy():
        e = [tables[f][r[f]] for f in range(len(VOCABS))]
        rows.append(np.concatenate([ef[:2] for ef in e] + [ef[2:] for ef in e]))
    assert_close(emb(x), torch.from_numpy(np.stack(rows)), name="official x_0 layout")


def test_field_layout_is_unchanged_default():
    emb = _embed("field")
    x = torch.tensor([[1, 2, 0, 3]])
    e = [t.weight.detach()[x[0, f]] for f, t in enumerate(emb.tables)]
    assert_close(emb(x)[0], torch.cat(e), name="field-contiguous x_0")
    assert FieldEmbedding(VOCABS, 4).layout == "field"


def test_layouts_pair_different_coordinates_in_the_cross_layer():
    # In the official layout, coordinate j (< d/2) and j + d/2 come from the same field; in ours they do not.
    d, half = len(VOCABS) * 4, len(VOCABS) * 2
    field_of_halves = [j // 2 for j in range(half)] + [j // 2 for j in range(half)]
    field_of_field = [j // 4 for j in range(d)]
    assert all(field_of_halves[j] == field_of_halves[j + half] for j in range(half))
    assert not any(field_of_field[j] == field_of_field[j + half] for j in range(half))
    # and the models differ: same parameters, different x_0 order -> different logits
    torch.manual_seed(3)
    a = SingleCross(VOCABS, "exponential", emb_dim=4, num_layers=2, dropout=0.0).double().eval()
    torch.manual_seed(3)
    b = SingleCross(VOCABS, "exponential", emb_dim=4, num_layers=2, dropout=0.0, embedding_layout="halves")
    b = b.double().eval()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        for t in a.embedding.tables:  # larger embeddings so that the interaction terms are visible
            t.weight.normal_()
        b.embedding.load_state_dict(a.embedding.state_dict())
    x = torch.tensor([[1, 2, 0, 3], [4, 6, 2, 0]])
    assert not torch.allclose(a(x), b(x))


def test_bad_layout_and_odd_dim_raise():
    with pytest.raises(ValueError, match="layout"):
        FieldEmbedding(VOCABS, 4, layout="heads")
    with pytest.raises(ValueError, match="even"):
        FieldEmbedding(VOCABS, 3, layout="halves")


def test_fuxictr_reset_parameters_xavier_normal_zero_bias():
    torch.manual_seed(0)
    model = FCN([50] * 8, emb_dim=16)  # d = 128
    fuxictr_reset_parameters(model)
    w = model.ecn.layers[0].w.weight.detach()  # 64 x 128, no bias
    # xavier_normal_: std = gain * sqrt(2 / (fan_in + fan_out)), gain 1
    expected = math.sqrt(2.0 / (128 + 64))
    assert abs(w.std().item() / expected - 1) < 0.03  # 8192 draws: relative s.e. of the std ~ 0.8%
    for m in model.modules():
        if isinstance(m, torch.nn.Linear) and m.bias is not None:
            assert torch.count_nonzero(m.bias) == 0
    fc = model.ecn.fc.weight.detach()
    assert abs(fc.std().item() / math.sqrt(2.0 / 129) - 1) < 0.2  # 128 draws
    b = model.ecn.layers[0].b.detach()  # not an nn.Linear: keeps its U(0, 1) init
    assert 0 <= b.min() and b.max() < 1 and b.std() > 0.2
    assert abs(model.embedding.tables[0].weight.std().item() / 1e-4 - 1) < 0.1  # FuxiCTR N(0, 1e-4^2)


CFG = {"emb_dim": 4, "ecn_layers": 2, "lcn_layers": 2, "ecn_dropout": 0.0, "lcn_dropout": 0.0,
       "dcn_layers": 2, "dnn_hidden": [8], "dnn_dropout": 0.0}  # fmt: skip


@pytest.mark.parametrize("arm", ["lr", "dnn", "dcnv2", "ecn", "lcn", "fcn_tribce"])
def test_build_model_options(arm):
    torch.manual_seed(0)
    old = build_model(arm, VOCABS, CFG)  # no option keys: the behaviour the cpu results were computed with
    torch.manual_seed(0)
    new = build_model(arm, VOCABS, {**CFG, "init": "fuxictr", "embedding_layout": "halves"})
    biases_old = [m.bias for m in old.modules() if isinstance(m, torch.nn.Linear) and m.bias is not None]
    biases_new = [m.bias for m in new.modules() if isinstance(m, torch.nn.Linear) and m.bias is not None]
    assert all(torch.count_nonzero(b) == 0 for b in biases_new)
    if biases_old:
        assert any(torch.count_nonzero(b) > 0 for b in biases_old)  # torch's default init
    layouts = {m.layout for m in new.modules() if isinstance(m, FieldEmbedding)}
    assert layouts == ({"halves"} if arm in ("ecn", "lcn", "fcn_tribce") else {"field"})
    with pytest.raises(ValueError, match="init"):
        build_model(arm, VOCABS, {**CFG, "init": "kaiming"})


def test_every_scale_builds_the_official_model():
    # protocol v5: smoke, cpu and full all build the model as FuxiCTR does (README "Protocol v5")
    from pathlib import Path

    mod = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    for scale in ("smoke", "cpu", "full"):
        assert mod.SCALES[scale]["init"] == "fuxictr"
        assert mod.SCALES[scale]["embedding_layout"] == "halves"
