"""The unlearning losses and the EO regulariser against direct float64 computations."""

import math

import pytest
import torch
import torch.nn.functional as F
from prob_unlearn.losses import answer_positions, mean_entropy, pad_batch, unlearning_loss


def _model_and_batches():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=17,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=32,
        max_position_embeddings=32,
        tie_word_embeddings=True,
        pad_token_id=0,
    )
    model = LlamaForCausalLM(cfg).double()

    def batch(seed):
        g = torch.Generator().manual_seed(seed)
        ids = torch.randint(3, 17, (3, 7), generator=g)
        attn = torch.ones_like(ids)
        ids[0, 5:], attn[0, 5:] = 0, 0  # one padded row
        labels = ids.clone()
        labels[:, :3] = -100  # the "question"
        labels[attn == 0] = -100
        return {"input_ids": ids, "attention_mask": attn, "labels": labels}

    return model, batch(1), batch(2)


def _ref_ce(model, b, reduction="mean"):
    logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    lab = b["labels"][:, 1:]
    per = F.cross_entropy(logits[:, :-1].transpose(1, 2), lab, ignore_index=-100, reduction="none")
    return per.sum() / (lab != -100).sum() if reduction == "mean" else per.sum(1)


def test_mean_entropy_hand_values():
    # uniform over 4 -> log 4; one-hot (very peaked) -> ~0; masked mean picks the uniform row only
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]]])
    assert mean_entropy(logits).item() == pytest.approx(math.log(4) / 2, abs=1e-6)
    assert mean_entropy(logits, torch.tensor([[1, 0]])).item() == pytest.approx(math.log(4), abs=1e-6)


def test_answer_positions_shift():
    labels = torch.tensor([[-100, -100, 5, 6, -100]])
    assert answer_positions(labels).tolist() == [[False, True, True, False, False]]


def test_ga_gd_npo_match_direct_formulas():
    model, f, r = _model_and_batches()
    ref = _model_and_batches()[0]
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.01)
    ce_f, ce_r = _ref_ce(model, f).item(), _ref_ce(model, r).item()
    loss, _ = unlearning_loss(model, f, r, method="ga")
    assert loss.item() == pytest.approx(-ce_f, rel=1e-9)
    loss, _ = unlearning_loss(model, f, r, method="gd", lam=0.7)
    assert loss.item() == pytest.approx(0.7 * ce_r - ce_f, rel=1e-9)
    beta = 0.05
    ratio = _ref_ce(model, f, "sum") - _ref_ce(ref, f, "sum")
    want = (-2 / beta * F.logsigmoid(beta * ratio).mean() + ce_r).item()
    loss, _ = unlearning_loss(model, f, r, method="npo", ref_model=ref, beta=beta)
    assert loss.item() == pytest.approx(want, rel=1e-9)


def test_eo_terms_answer_and_all_positions():
    model, f, r = _model_and_batches()
    base, _ = unlearning_loss(model, f, r, method="gd")
    with torch.no_grad():
        lf = model(input_ids=f["input_ids"], attention_mask=f["attention_mask"]).logits
        lr = model(input_ids=r["input_ids"], attention_mask=r["attention_mask"]).logits
    eo, logs = unlearning_loss(model, f, r, method="gd", eo=True, lambda_f=1.0, lambda_r=-0.25)
    h_f = mean_entropy(lf, answer_positions(f["labels"])).item()
    h_r = mean_entropy(lr, answer_positions(r["labels"])).item()
    assert eo.item() == pytest.approx(base.item() + h_f - 0.25 * h_r, rel=1e-9)
    # "all": the official mean over every position of the (padded) batch
    fp, rp = pad_batch(f, 10, 0), pad_batch(r, 10, 0)
    eo_all, _ = unlearning_loss(model, fp, rp, method="ga", eo=True, positions="all")
    with torch.no_grad():
        lfp = model(input_ids=fp["input_ids"], attention_mask=fp["attention_mask"]).logits
        lrp = model(input_ids=rp["input_ids"], attention_mask=rp["attention_mask"]).logits
    want = -_ref_ce(model, fp).item() + mean_entropy(lfp).item() - 0.25 * mean_entropy(lrp).item()
    assert eo_all.item() == pytest.approx(want, rel=1e-9)


def test_entropy_gradient_and_errors():
    from xentlab.testing import check_gradients

    check_gradients(lambda x: mean_entropy(x, torch.tensor([[1, 0, 1]])), torch.randn(1, 3, 5))
    model, f, r = _model_and_batches()
    with pytest.raises(ValueError, match="method"):
        unlearning_loss(model, f, r, method="sgd")
    with pytest.raises(ValueError, match="positions"):
        unlearning_loss(model, f, r, method="ga", eo=True, positions="question")
    with pytest.raises(ValueError, match="pad_to"):
        pad_batch(f, 3, 0)


def test_pad_batch_values_and_empty_mask_entropy():
    # the official max_length padding: pad id, attention 0, labels ignored
    b = {"input_ids": torch.tensor([[5, 6]]), "attention_mask": torch.tensor([[1, 1]]),
         "labels": torch.tensor([[-100, 6]])}  # fmt: skip
    p = pad_batch(b, 4, 0)
    assert p["input_ids"].tolist() == [[5, 6, 0, 0]]
    assert p["attention_mask"].tolist() == [[1, 1, 0, 0]]
    assert p["labels"].tolist() == [[-100, 6, -100, -100]]
    # no selected position: 0 (the clamp), not 0 / 0
    assert mean_entropy(torch.randn(1, 2, 3), torch.zeros(1, 2)).item() == 0.0


def test_npo_defaults_reference_and_logs():
    # NPO with the official beta = 0.05 by default and a non-default lambda on the retain CE; the
    # reference model gets no gradient
    model, f, r = _model_and_batches()
    ref = _model_and_batches()[0]
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.01)
    ce_r = _ref_ce(model, r).item()
    nll = _ref_ce(model, f, "sum")
    ratio = nll - _ref_ce(ref, f, "sum")
    want = (-2 / 0.05 * F.logsigmoid(0.05 * ratio).mean() + 0.7 * ce_r).item()
    loss, logs = unlearning_loss(model, f, r, method="npo", ref_model=ref, lam=0.7)
    assert loss.item() == pytest.approx(want, rel=1e-9)
    assert logs["nll_forget"] == pytest.approx(nll.mean().item(), rel=1e-9)
    loss.backward()
    assert all(p.grad is None for p in ref.parameters())
    assert any(p.grad is not None for p in model.parameters())


def test_eo_uses_each_batch_own_answer_positions_and_logs():
    # retain batch with a different question length than the forget batch, so the two answer masks differ
    model, f, r = _model_and_batches()
    r = dict(r, labels=r["labels"].clone())
    r["labels"][:, 3:5] = -100
    with torch.no_grad():
        lf = model(input_ids=f["input_ids"], attention_mask=f["attention_mask"]).logits
        lr = model(input_ids=r["input_ids"], attention_mask=r["attention_mask"]).logits
    h_f = mean_entropy(lf, answer_positions(f["labels"])).item()
    h_r = mean_entropy(lr, answer_positions(r["labels"])).item()
    assert abs(h_r - mean_entropy(lr, answer_positions(f["labels"])).item()) > 1e-6
    loss, logs = unlearning_loss(model, f, r, method="ga", eo=True)
    assert loss.item() == pytest.approx(-_ref_ce(model, f).item() + h_f - 0.25 * h_r, rel=1e-9)
    assert logs["entropy_forget"] == pytest.approx(h_f, rel=1e-9)
    assert logs["entropy_retain"] == pytest.approx(h_r, rel=1e-9)


def test_output_bias_enters_logits_and_ce():
    # Phi-1.5's lm_head has a bias; forward() must add it as model(...).logits does
    model, f, r = _model_and_batches()
    g = torch.Generator().manual_seed(3)
    model.lm_head.bias = torch.nn.Parameter(torch.randn(17, generator=g, dtype=torch.float64))
    with torch.no_grad():
        lf = model(input_ids=f["input_ids"], attention_mask=f["attention_mask"]).logits
    loss, logs = unlearning_loss(model, f, r, method="ga", eo=True, positions="all")
    # GA + EO over all positions: -CE_f + H(f) - 0.25 H(r), all from the biased logits
    with torch.no_grad():
        lr = model(input_ids=r["input_ids"], attention_mask=r["attention_mask"]).logits
    want = -_ref_ce(model, f).item() + mean_entropy(lf).item() - 0.25 * mean_entropy(lr).item()
    assert loss.item() == pytest.approx(want, rel=1e-9)
    assert logs["ce_forget"] == pytest.approx(_ref_ce(model, f).item(), rel=1e-9)
