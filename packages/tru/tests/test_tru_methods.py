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
    # Second audit: this test used to evaluate torch's logsigmoid on its own (it never called the package,
    # so it could not fail). Now tru.methods.npo_loss itself, with the reference NLL placed `gap` nats below
    # the policy's summed NLL: L = -(2/beta) log sigmoid(beta * gap) = (2/beta) log(1 + exp(-beta * gap)).
    # Hand values (float64, beta = 0.1): gap 10 -> 20 log(1 + e^-1) = 6.265233750364457,
    # gap 100 -> 20 log(1 + e^-10) = 9.079779843372929e-4, gap -10 -> 20 log(1 + e) = 26.265233750364455;
    # as the forget likelihood -> 0 (gap -> inf) NPO's loss -> 0 (below (2/beta) log 2 for every gap > 0),
    # while GA's -CE has no lower bound.
    model = _model().double()
    b = {"forget": _batch(0)}
    beta = 0.1
    nll = lm_loss(model, b["forget"], reduction="sum").detach()
    for gap, want in ((10.0, 6.265233750364457), (100.0, 9.079779843372929e-4), (-10.0, 26.265233750364455)):
        loss, _ = npo_loss(model, b, beta=beta, nll_ref=nll - gap)
        assert loss.dtype == torch.float64
        assert math.isclose(loss.item(), want, rel_tol=1e-9), (gap, loss.item(), want)
        assert (0 < loss.item() < 2 / beta * math.log(2)) == (gap > 0)


def test_tru_target_is_the_token_mean_over_reasoning_and_refusal_tokens():
    # L_target as implemented (README, deviations): the mean of -log p over every labelled token of the target
    # batch (reasoning + refusal), i.e. HF's CE, not the per-sequence sum of the paper's formula. Reference: the
    # model's float64 logits and a hand loop over the labelled positions.
    model = _model().double()
    b = {"forget": _batch(0), "retain": _batch(3), "target": _batch(6)}
    t = b["target"]
    logits = model(input_ids=t["input_ids"], attention_mask=t["attention_mask"]).logits.double()
    nlls = []
    for i in range(t["labels"].shape[0]):
        for pos in range(1, t["labels"].shape[1]):
            y = int(t["labels"][i, pos])
            if y != -100:
                nlls.append(-torch.log_softmax(logits[i, pos - 1], -1)[y].item())
    assert len(nlls) == 6  # 3 + 3 labelled tokens in the two rows
    want = sum(nlls) / len(nlls)
    assert math.isclose(tru_loss(model, b, alpha=0.0)[0].item(), want, rel_tol=1e-9)


def test_unlearn_trains_in_place_and_npo_keeps_a_frozen_reference(monkeypatch):
    import tru.methods as methods

    model = _model()
    streams = {"forget": lambda s: _batch(0), "retain": lambda s: _batch(3), "target": lambda s: _batch(6)}
    before = lm_loss(model, _batch(0)).item()
    unlearn(model, UnlearnConfig(method="ga", steps=3, lr=1e-2), streams, pad_id=0)
    assert lm_loss(model, _batch(0)).item() > before  # gradient ascent raised the forget loss
    model2 = _model()
    unlearn(model2, UnlearnConfig(method="tru", steps=3, lr=1e-2, alpha=0.5), streams, pad_id=0)
    assert lm_loss(model2, _batch(6)).item() < lm_loss(_model(), _batch(6)).item()  # target learned
    # NPO: the reference is the model as unlearning starts and stays frozen while the policy moves (second
    # audit: the test used to check only that the policy's parameters require grad, which a reference
    # aliasing the policy would also pass)
    model3 = _model()
    start = lm_loss(model3, _batch(0), reduction="sum").detach()
    seen = []
    npo = methods.LOSSES["npo"]

    def spy(m, b, *, ref_model=None, **kw):
        assert ref_model is not m and not any(p.requires_grad for p in ref_model.parameters())
        with torch.no_grad():
            seen.append(
                (lm_loss(ref_model, b["forget"], reduction="sum"), lm_loss(m, b["forget"], reduction="sum"))
            )
        return npo(m, b, ref_model=ref_model, **kw)

    monkeypatch.setitem(methods.LOSSES, "npo", spy)
    unlearn(model3, UnlearnConfig(method="npo", steps=3, lr=1e-2), streams, pad_id=0)
    assert len(seen) == 3 and all(p.requires_grad for p in model3.parameters())
    for ref_nll, _ in seen:
        assert_close(ref_nll, start)
    assert not torch.allclose(seen[-1][1], start)  # the policy did move


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
