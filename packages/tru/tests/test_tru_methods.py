"""The unlearning losses against hand derivations, and the common trainer's contract."""

from __future__ import annotations

import math

import pytest
import torch
from tru.methods import LOSSES, UnlearnConfig, ga_loss, graddiff_loss, npo_loss, tru_loss, unlearn

from xentlab.lm.train import Example, collate, lm_loss
from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm
from xentlab.testing import assert_close

CFG = TinyLMConfig(hidden=32, layers=2, heads=2, kv_heads=1, intermediate=64, vocab_size=40)


def _batch(offset):
    ex = [
        Example((1, 5 + offset, 6, 7, 8, 2), (0, 0, 0, 1, 1, 1)),
        Example((1, 9, 10 + offset, 11, 2), (0, 0, 1, 1, 1)),
    ]
    return collate(ex, pad_id=0)


def _model(seed=0):
    return build_tiny_lm(CFG, seed=seed)


def _grads(model, loss):
    model.zero_grad()
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def test_ga_and_graddiff_are_signed_sums_of_cross_entropies():
    model = _model()
    b = {"forget": _batch(0), "retain": _batch(3), "target": _batch(6)}
    f, r, t = lm_loss(model, b["forget"]), lm_loss(model, b["retain"]), lm_loss(model, b["target"])
    assert_close(ga_loss(model, b)[0], -f)
    assert_close(graddiff_loss(model, b)[0], -f + r)
    # TRU: L_target + alpha * (-CE_forget + CE_retain)
    assert_close(tru_loss(model, b, alpha=0.3)[0], t + 0.3 * (-f + r))
    assert_close(tru_loss(model, b, alpha=0.0)[0], t)


def test_npo_at_the_reference_is_2_log2_over_beta_with_the_ga_gradient_on_summed_nll():
    # at theta = theta_ref the log ratio is 0: L = -(2/beta) log sigmoid(0) = (2/beta) log 2, and
    # dL/dtheta = -(2/beta) * sigmoid(0) * beta * d(nll)/dtheta = -d(mean summed nll)/dtheta
    model, ref = _model(), _model()
    b = {"forget": _batch(0)}
    beta = 0.1
    loss, _ = npo_loss(model, b, ref_model=ref, beta=beta)
    assert math.isclose(loss.item(), 2 / beta * math.log(2), rel_tol=1e-5)
    g_npo = _grads(model, npo_loss(model, b, ref_model=ref, beta=beta)[0])
    g_ga = _grads(model, -lm_loss(model, b["forget"], reduction="sum").mean())
    assert_close(g_npo, g_ga, atol=1e-5, rtol=1e-4)


def test_npo_is_bounded_where_ga_is_not():
    # as the forget likelihood -> 0 (nll - nll_ref -> inf), NPO's loss -> 0 while GA's -> -inf
    beta = 0.1
    for gap in (10.0, 100.0, 1000.0):
        npo = -torch.nn.functional.logsigmoid(torch.tensor(beta * gap)) * 2 / beta
        assert 0 <= npo.item() < 2 / beta * math.log(2)


def test_unlearn_trains_in_place_and_npo_keeps_a_frozen_reference():
    model = _model()
    streams = {"forget": lambda s: _batch(0), "retain": lambda s: _batch(3), "target": lambda s: _batch(6)}
    before = lm_loss(model, _batch(0)).item()
    unlearn(model, UnlearnConfig(method="ga", steps=3, lr=1e-2), streams, pad_id=0)
    assert lm_loss(model, _batch(0)).item() > before  # gradient ascent raised the forget loss
    model2 = _model()
    unlearn(model2, UnlearnConfig(method="tru", steps=3, lr=1e-2, alpha=0.5), streams, pad_id=0)
    assert lm_loss(model2, _batch(6)).item() < lm_loss(_model(), _batch(6)).item()  # target learned
    model3 = _model()
    unlearn(model3, UnlearnConfig(method="npo", steps=2, lr=1e-2), streams, pad_id=0)
    assert all(p.requires_grad for p in model3.parameters())


def test_checkpoints_are_called_between_steps():
    calls = []
    streams = {"forget": lambda s: _batch(0), "retain": lambda s: _batch(3)}
    unlearn(
        _model(),
        UnlearnConfig(method="graddiff", steps=6, lr=1e-3, eval_every=2),
        streams,
        pad_id=0,
        on_eval=calls.append,
    )
    assert calls == [2, 4]


def test_bad_configs_and_missing_streams_raise():
    with pytest.raises(ValueError, match="method"):
        UnlearnConfig(method="rmu")
    with pytest.raises(ValueError, match="beta"):
        UnlearnConfig(method="npo", beta=0)
    with pytest.raises(ValueError, match="target"):
        unlearn(_model(), UnlearnConfig(method="tru", steps=1), {"forget": lambda s: _batch(0)}, pad_id=0)
    assert set(LOSSES) == {"ga", "graddiff", "npo", "refusal", "tru"}
