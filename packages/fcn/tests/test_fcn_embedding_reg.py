"""FuxiCTR's embedding regulariser (second fidelity audit, protocol v6).

The official Criteo configs (salmon1802/FCN config/model_config.yaml: ECN_Criteo, LCN_Criteo, FCNv1_Criteo;
the ECN Criteo log prints ``embedding_regularizer: 1e-05``) set ``embedding_regularizer: 1.e-5``. FuxiCTR's
``BaseModel.regularization_loss`` turns a float into an L2 term and adds, for every parameter of a
``FeatureEmbeddingDict`` (the embedding tables, whole tables, not only the rows in the batch),
(lambda / p) * ||W||_p^p with p = 2, i.e. lambda / 2 * sum W^2; ``compute_loss = add_loss + regularization_loss``
(so for FCN: Tri-BCE + the term). No other parameter is regularised (``net_regularizer: 0``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fcn.train import batch_loss, build_model, embedding_l2

from xentlab.testing import assert_close, load_reproduce

VOCABS = [5, 7, 3, 4]
CFG = {"emb_dim": 4, "ecn_layers": 2, "lcn_layers": 2, "ecn_dropout": 0.0, "lcn_dropout": 0.0,
       "dcn_layers": 2, "dnn_hidden": [8], "dnn_dropout": 0.0}  # fmt: skip


def _batch():
    x = torch.tensor([[1, 2, 0, 3], [4, 6, 2, 0], [0, 0, 1, 1]])
    y = torch.tensor([1.0, 0.0, 1.0])
    return x, y


@pytest.mark.parametrize("arm", ["lr", "dnn", "dcnv2", "ecn", "lcn", "fcn_tribce", "fcn_bce"])
def test_embedding_l2_is_half_lambda_sum_of_squares_of_whole_tables(arm):
    torch.manual_seed(0)
    model = build_model(arm, VOCABS, CFG).double()
    with torch.no_grad():  # make the tables O(1) so that the term is far above float rounding
        for m in model.modules():
            if isinstance(m, torch.nn.Embedding):
                m.weight.normal_()
    # hand derivation in float64: lambda / 2 * sum over every table of every entry squared (FuxiCTR
    # (emb_lambda / emb_p) * torch.norm(param, emb_p) ** emb_p, emb_p = 2); the LR bias, the nn.Linear
    # weights, b_l and LayerNorm are not embedding parameters and are not regularised (net_regularizer 0)
    tables = [m.weight.detach().numpy() for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    assert len(tables) == len(VOCABS)
    expected = 1e-5 / 2 * sum(float(np.sum(t.astype(np.float64) ** 2)) for t in tables)
    assert_close(embedding_l2(model, 1e-5), torch.tensor(expected, dtype=torch.float64), rtol=1e-12)


@pytest.mark.parametrize("arm", ["lr", "dcnv2", "fcn_tribce", "fcn_bce"])
def test_batch_loss_adds_the_term_only_when_configured(arm):
    torch.manual_seed(0)
    model = build_model(arm, VOCABS, CFG).double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Embedding):
                m.weight.normal_()
    x, y = _batch()
    y = y.double()
    plain = batch_loss(arm, model, x, y)  # no key: the protocol v1-v5 loss, unchanged
    assert_close(batch_loss(arm, model, x, y, embedding_regularizer=0.0), plain, rtol=0, atol=0)
    reg = batch_loss(arm, model, x, y, embedding_regularizer=1e-3)
    assert_close(reg - plain, embedding_l2(model, 1e-3), rtol=1e-10)
    # the gradient of the term on a table is lambda * W on EVERY row, also rows absent from the batch
    model.zero_grad()
    (reg - plain).backward()
    t = next(m for m in model.modules() if isinstance(m, torch.nn.Embedding))
    assert_close(t.weight.grad, 1e-3 * t.weight.detach(), rtol=1e-10)


def test_bad_regulariser_raises():
    model = build_model("lr", VOCABS, CFG)
    with pytest.raises(ValueError, match="embedding_regularizer"):
        embedding_l2(model, -1e-5)


def test_every_scale_uses_the_official_embedding_regulariser():
    mod = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    for scale in ("smoke", "cpu", "full"):
        assert mod.SCALES[scale]["embedding_regularizer"] == 1e-5
    assert {e.version for e in mod.EXPERIMENTS} == {"6"}
