"""The shared rollout: layout of the right-padded batch, the response mask covers exactly the
sampled tokens (incl. </s>, not padding), old log-probs equal a direct recomputation from the
logits, samples are reproducible with a seed, rewards are grouped per prompt."""

from __future__ import annotations

import pytest
import torch

from xentlab.data.tokenizer import get_tokenizer
from xentlab.lm.generate import generate
from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm
from xentlab.rl.rollout import rollout, sample_correct, token_logprobs

PROMPTS = ["<s>3+4=", "<s>12-5=", "<s>7*8="]


@pytest.fixture(scope="module")
def setup():
    tok = get_tokenizer(["0123456789+-*= "], vocab_size=259, include_pydoc=False, name="bytes")
    cfg = TinyLMConfig(hidden=32, layers=2, heads=2, kv_heads=1, intermediate=64, vocab_size=len(tok))
    return tok, build_tiny_lm(cfg, tok, seed=0).eval()


def _reward(i: int, text: str) -> float:
    return float(len(text) % 2)  # any deterministic function of (prompt, text)


def test_layout_and_response_mask(setup):
    tok, model = setup
    ro = rollout(model, tok, PROMPTS, _reward, n=4, max_new_tokens=6, seed=0)
    B = len(PROMPTS) * 4
    assert ro.input_ids.shape[0] == B and ro.old_logprobs.shape == ro.input_ids.shape
    assert ro.rewards.shape == (B,) and ro.grouped_rewards().shape == (3, 4)
    assert ro.group.tolist() == [g for g in range(3) for _ in range(4)]
    gens = generate(model, tok, PROMPTS, max_new_tokens=6, do_sample=True, num_return_sequences=4, seed=0)
    for i in range(B):
        ids = ro.input_ids[i][ro.attention_mask[i].bool()].tolist()
        prompt, completion = gens.prompt_ids[i], gens.completion_ids[i]
        assert ids == prompt + completion  # right-padded: prompt, completion, then padding
        resp = ro.input_ids[i][ro.response_mask[i].bool()].tolist()
        assert resp == completion  # exactly the sampled tokens, </s> included when produced
        assert (ro.response_mask[i] <= ro.attention_mask[i]).all()  # never on padding
        assert gens.finished[i] == (completion[-1] == tok.eos_token_id)
        assert ro.rewards[i].item() == _reward(i // 4, ro.texts[i])
    assert (ro.old_logprobs * (1 - ro.response_mask) == 0).all()
    assert (ro.old_logprobs[ro.response_mask.bool()] < 0).all()


def test_old_logprobs_equal_direct_recomputation(setup):
    tok, model = setup
    for temp in (1.0, 0.7):
        ro = rollout(model, tok, PROMPTS, _reward, n=3, max_new_tokens=5, seed=1, temperature=temp)
        with torch.no_grad():
            logits = model(input_ids=ro.input_ids, attention_mask=ro.attention_mask).logits.double() / temp
            logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ro.input_ids[:, 1:, None])[..., 0]
        expected = torch.cat([torch.zeros(len(logp), 1, dtype=logp.dtype), logp], 1) * ro.response_mask
        torch.testing.assert_close(ro.old_logprobs.double(), expected, atol=1e-5, rtol=1e-5)
        assert ro.old_logprobs.dtype == torch.float32


def test_token_logprobs_has_grad_and_matches_old(setup):
    tok, model = setup
    ro = rollout(model, tok, PROMPTS, _reward, n=2, max_new_tokens=5, seed=2)
    model.train()
    lp = token_logprobs(model, ro.input_ids, ro.attention_mask, ro.response_mask)
    model.eval()
    assert lp.requires_grad
    torch.testing.assert_close(lp.detach(), ro.old_logprobs, atol=1e-6, rtol=1e-6)
    (lp * ro.response_mask).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.zero_grad(set_to_none=True)


def test_seeded_rollouts_are_reproducible(setup):
    tok, model = setup
    a = rollout(model, tok, PROMPTS, _reward, n=4, max_new_tokens=6, seed=5)
    b = rollout(model, tok, PROMPTS, _reward, n=4, max_new_tokens=6, seed=5)
    c = rollout(model, tok, PROMPTS, _reward, n=4, max_new_tokens=6, seed=6)
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.old_logprobs, b.old_logprobs)
    assert a.texts == b.texts and a.texts != c.texts


def test_select_takes_whole_groups(setup):
    tok, model = setup
    ro = rollout(model, tok, PROMPTS, _reward, n=2, max_new_tokens=4, seed=0)
    sub = ro.select([2, 0])
    assert sub.group.tolist() == [2, 2, 0, 0] and sub.texts == ro.texts[4:6] + ro.texts[0:2]
    assert sub.input_ids.shape[1] == int(sub.attention_mask.sum(1).max())


def test_sample_correct_counts_and_errors(setup):
    tok, model = setup
    counts = sample_correct(
        model, tok, PROMPTS, lambda i, t: 1.0 if i == 1 else 0.0, n=5, max_new_tokens=3, seed=0
    )
    assert counts == [0, 5, 0]
    with pytest.raises(ValueError, match="n must be"):
        rollout(model, tok, PROMPTS, _reward, n=0, max_new_tokens=3)
    with pytest.raises(ValueError, match="position 0"):
        token_logprobs(model, torch.ones(1, 3, dtype=torch.long), torch.ones(1, 3), torch.ones(1, 3))


def test_select_keeps_every_per_row_field_of_the_chosen_rows(setup):
    tok, model = setup
    ro = rollout(model, tok, PROMPTS, lambda i, t: float(i) + len(t) / 100, n=2, max_new_tokens=4, seed=0)
    assert ro.num_groups == 3
    sub = ro.select([2, 0])
    rows = [4, 5, 0, 1]
    w = sub.input_ids.shape[1]
    assert torch.equal(sub.input_ids, ro.input_ids[rows, :w])
    assert torch.equal(sub.response_mask, ro.response_mask[rows, :w])
    assert torch.equal(sub.old_logprobs, ro.old_logprobs[rows, :w])
    assert torch.equal(sub.rewards, ro.rewards[rows])
    assert sub.finished == [ro.finished[i] for i in rows] and sub.num_groups == 2


def test_rewards_are_scored_with_the_prompt_index(setup):
    # reward_fn(i, text) gets the index of the row's prompt (row g*n + j belongs to prompt g)
    tok, model = setup
    ro = rollout(model, tok, PROMPTS, lambda i, t: float(i), n=2, max_new_tokens=3, seed=0)
    assert ro.rewards.tolist() == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]


def test_rollout_restores_the_training_mode(setup):
    tok, model = setup
    model.train()
    try:
        rollout(model, tok, PROMPTS[:1], _reward, n=2, max_new_tokens=3, seed=0)
        assert model.training  # old log-probs are computed in eval mode, then the mode is restored
    finally:
        model.eval()
    rollout(model, tok, PROMPTS[:1], _reward, n=2, max_new_tokens=3, seed=0)
    assert not model.training


def test_a_reward_of_one_half_counts_as_correct(setup):
    # sample_correct: correct means reward >= 0.5
    tok, model = setup
    assert sample_correct(model, tok, PROMPTS, lambda i, t: 0.5, n=3, max_new_tokens=2, seed=0) == [3, 3, 3]
    assert sample_correct(model, tok, PROMPTS, lambda i, t: 0.49, n=3, max_new_tokens=2, seed=0) == [0, 0, 0]


def test_token_logprobs_divide_a_head_bias_by_the_temperature_too(setup):
    # a head with a bias: log softmax((h W^T + b) / T) needs b / T as well as h / T (float64 reference)
    import copy

    tok, model = setup
    biased = copy.deepcopy(model)
    head = biased.get_output_embeddings()
    g = torch.Generator().manual_seed(0)
    head.bias = torch.nn.Parameter(torch.randn(head.weight.shape[0], generator=g))
    ids = torch.tensor([tok.encode(PROMPTS[0])[:6]])
    attn = torch.ones_like(ids)
    resp = torch.tensor([[0, 0, 0, 1, 1, 1]], dtype=torch.float32)[:, : ids.shape[1]]
    with torch.no_grad():
        lp = token_logprobs(biased, ids, attn, resp, temperature=0.7)
        logits = biased(input_ids=ids, attention_mask=attn).logits.double() / 0.7
    ref = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
    expected = torch.cat([torch.zeros(1, 1, dtype=ref.dtype), ref], 1) * resp
    torch.testing.assert_close(lp.double(), expected, atol=1e-5, rtol=1e-5)


def test_clear_errors_for_temperature_and_empty_prompts(setup):
    tok, model = setup
    ids = torch.ones(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs(model, ids, torch.ones(1, 3), torch.tensor([[0.0, 1.0, 1.0]]), temperature=0.0)
    with pytest.raises(ValueError, match="at least one prompt"):
        rollout(model, tok, [], _reward, n=2, max_new_tokens=3)
