"""The LM training pieces: masks and padding, the loss against float64 references, the loop."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import xentlab.lm.train as lmt
from xentlab.lm.train import (
    IGNORE_INDEX,
    BatchStream,
    Example,
    LMTrainConfig,
    collate,
    concat_batches,
    fit,
    fit_lm,
    lm_loss,
    lr_lambda,
    mean_loss,
    pretrain_then_finetune,
    sequence_logprob,
    token_cross_entropy,
)
from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm
from xentlab.testing import assert_close, check_gradients

SMALL = TinyLMConfig(hidden=32, layers=2, heads=2, kv_heads=1, intermediate=64, vocab_size=40)


def _examples():
    # prompt tokens (mask 0) then response tokens (mask 1); different lengths
    return [
        Example((1, 5, 6, 7, 8, 2), (0, 0, 0, 1, 1, 1)),
        Example((1, 9, 10, 2), (0, 0, 1, 1)),
        Example((1, 11, 12, 13, 14, 15, 16, 2), (0, 0, 0, 0, 1, 1, 1, 1)),
    ]


def test_collate_pads_right_and_masks_prompt_and_padding():
    b = collate(_examples(), pad_id=0, pad_to_multiple_of=4)
    assert b["input_ids"].shape == (3, 8)
    assert b["attention_mask"].tolist()[1] == [1, 1, 1, 1, 0, 0, 0, 0]
    assert b["labels"].tolist()[1] == [IGNORE_INDEX, IGNORE_INDEX, 10, 2] + [IGNORE_INDEX] * 4
    assert b["input_ids"][1, 4:].eq(0).all()


def test_example_validation():
    with pytest.raises(ValueError, match="differ"):
        Example((1, 2, 3), (0, 1))
    with pytest.raises(ValueError, match="at least 2"):
        Example((1,), (1,))
    with pytest.raises(ValueError, match="empty"):
        collate([], pad_id=0)


def _reference_ce(h, w, labels):
    """float64: position t predicts labels[t+1]; -log_softmax at that label, 0 where ignored."""
    logits = h.double() @ w.double().T
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    tgt = labels[:, 1:]
    valid = tgt != IGNORE_INDEX
    nll = -logp.gather(-1, tgt.clamp_min(0).unsqueeze(-1)).squeeze(-1) * valid
    return nll, valid


@pytest.mark.parametrize("backend", ["plain", "auto"])
def test_token_cross_entropy_matches_a_float64_reference(backend, monkeypatch):
    monkeypatch.setattr(lmt, "_LCE", lmt._plain_linear_cross_entropy if backend == "plain" else None)
    g = torch.Generator().manual_seed(0)
    h, w = torch.randn(3, 8, 16, generator=g), torch.randn(40, 16, generator=g)
    labels = collate(_examples(), pad_id=0)["labels"]
    nll, valid = _reference_ce(h, w, labels)
    assert_close(token_cross_entropy(h, w, labels, reduction="none"), nll.float(), atol=1e-5, rtol=1e-5)
    assert_close(token_cross_entropy(h, w, labels, reduction="sum"), nll.sum(1).float(), atol=1e-4, rtol=1e-5)
    mean = token_cross_entropy(h, w, labels)
    assert_close(mean, (nll.sum() / valid.sum()).float(), atol=1e-5, rtol=1e-5)


def test_token_cross_entropy_hand_value():
    # zero hidden states -> uniform logits over V=4: every counted token costs log 4
    labels = torch.tensor([[IGNORE_INDEX, 1, 2, IGNORE_INDEX]])
    loss = token_cross_entropy(torch.zeros(1, 4, 3), torch.randn(4, 3), labels)
    assert math.isclose(loss.item(), math.log(4), rel_tol=1e-6)


def test_no_target_tokens_gives_zero_with_a_graph_and_bad_args_raise():
    h = torch.randn(1, 3, 4, requires_grad=True)
    loss = token_cross_entropy(h, torch.randn(5, 4), torch.full((1, 3), IGNORE_INDEX))
    loss.backward()
    assert loss.item() == 0.0 and h.grad is not None
    with pytest.raises(ValueError, match="reduction"):
        token_cross_entropy(h, torch.randn(5, 4), torch.zeros(1, 3, dtype=torch.long), reduction="max")
    with pytest.raises(ValueError, match="disagree"):
        token_cross_entropy(h, torch.randn(5, 4), torch.zeros(1, 4, dtype=torch.long))


def test_plain_linear_cross_entropy_gradients():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(2, 4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    t = torch.tensor([[0, 1, IGNORE_INDEX, 3], [4, IGNORE_INDEX, 2, 2]])
    check_gradients(lambda h, w: lmt._plain_linear_cross_entropy(h, w, t, shift=1, reduction="sum"), h, w)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_lm_loss_equals_the_hf_loss_and_sequence_logprob_the_summed_log_likelihood(arch):
    model = build_tiny_lm(
        TinyLMConfig(arch=arch, **{k: v for k, v in SMALL.__dict__.items() if k != "arch"}), seed=0
    )
    b = collate(_examples(), pad_id=0)
    hf = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss
    assert_close(lm_loss(model, b), hf, atol=1e-5, rtol=1e-5)
    logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits.double()
    logp = torch.log_softmax(logits[:, :-1], -1)
    tgt = b["labels"][:, 1:]
    ref = (logp.gather(-1, tgt.clamp_min(0)[..., None])[..., 0] * (tgt != IGNORE_INDEX)).sum(1)
    assert_close(sequence_logprob(model, b), ref.float(), atol=1e-4, rtol=1e-5)


def test_batch_stream_is_deterministic_and_trims_padding():
    ex = _examples() * 4
    a, b = BatchStream(ex, 5, pad_id=0, seed=3), BatchStream(ex, 5, pad_id=0, seed=3)
    for s in range(6):
        x, y = a(s), b(s)
        assert all(torch.equal(x[k], y[k]) for k in x)
        assert x["attention_mask"][:, -1].any()  # no all-padding last column
    assert not torch.equal(BatchStream(ex, 5, pad_id=0, seed=4)(0)["input_ids"], a(0)["input_ids"])


def test_concat_batches_pads_the_narrower_batch():
    ex = _examples()
    both = concat_batches(collate(ex[:2], 0), collate(ex[2:], 0), pad_id=0)
    assert both["input_ids"].shape == (3, 8)
    assert torch.equal(both["labels"], collate(ex, 0)["labels"])


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    f = lr_lambda(LMTrainConfig(steps=100, warmup_frac=0.1, min_lr_frac=0.1))
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(100) == pytest.approx(0.1)
    assert all(f(s) >= f(s + 1) for s in range(10, 100))


def test_fit_lm_memorises_a_few_responses_and_the_nan_guard_fires():
    torch.manual_seed(0)
    model = build_tiny_lm(SMALL, seed=0)
    ex = _examples()
    before = mean_loss(model, ex, pad_id=0)
    hist = fit_lm(model, ex, LMTrainConfig(steps=60, batch_size=3, lr=1e-2, log_every=20), pad_id=0)
    assert [r["step"] for r in hist] == [20, 40, 60]
    after = mean_loss(model, ex, pad_id=0)
    assert before > 3.0 and after < 0.1 and not model.training
    with pytest.raises(FloatingPointError, match="non-finite"):
        fit(model, lambda m, s: torch.tensor(float("nan"), requires_grad=True), LMTrainConfig(steps=2))


def test_pretrain_then_finetune_runs_both_phases_with_replay():
    model = build_tiny_lm(SMALL, seed=1)
    text = [Example(tuple(range(1, 9)), (0,) + (1,) * 7), Example(tuple(range(3, 11)), (0,) + (1,) * 7)]
    seen = []
    hist = pretrain_then_finetune(
        model,
        text,
        _examples(),
        LMTrainConfig(steps=4, batch_size=2, log_every=2),
        LMTrainConfig(steps=4, batch_size=2, replay_batch=1, log_every=2),
        pad_id=0,
        on_log=lambda phase, step, row: seen.append((phase, step)),
    )
    assert [r["step"] for r in hist["pretrain"]] == [2, 4] and [r["step"] for r in hist["finetune"]] == [2, 4]
    assert seen == [("pretrain", 2), ("pretrain", 4), ("finetune", 2), ("finetune", 4)]


def test_float64_model_loss_backward_is_finite():
    model = build_tiny_lm(SMALL, seed=2).double()
    loss = lm_loss(model, collate(_examples(), pad_id=0))
    loss.backward()
    assert loss.dtype == torch.float64 and all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert F.mse_loss(loss, loss).item() == 0.0
