"""Batched generation: left padding does not change greedy outputs, the KV cache agrees with a
no-cache argmax loop, sampling is seeded, stopping at </s> is reported."""

from __future__ import annotations

import pytest
import torch

from xentlab.data.facts import tokenizer_corpus
from xentlab.data.tokenizer import chat_prompt, get_tokenizer
from xentlab.lm.generate import generate, generate_text, left_pad
from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm

PROMPTS = [chat_prompt("Where was Velna Orskov born?"), chat_prompt("Hi"), chat_prompt("What is 3 plus 4?")]


def _setup(arch="llama", seed=0):
    tok = get_tokenizer(tokenizer_corpus(), vocab_size=1024)
    cfg = TinyLMConfig(
        arch=arch, hidden=32, layers=2, heads=2, kv_heads=1, intermediate=64, vocab_size=len(tok)
    )
    return tok, build_tiny_lm(cfg, tok, seed=seed).eval()


def test_left_pad_right_aligns():
    ids, mask = left_pad([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_batched_greedy_equals_one_prompt_at_a_time(arch):
    tok, model = _setup(arch)
    batched = generate(model, tok, PROMPTS, max_new_tokens=8)
    alone = [generate(model, tok, [p], max_new_tokens=8).completion_ids[0] for p in PROMPTS]
    assert batched.completion_ids == alone


def test_kv_cache_matches_a_no_cache_argmax_loop():
    tok, model = _setup()
    ids = tok(PROMPTS[0], add_special_tokens=False)["input_ids"]
    seq = torch.tensor([ids])
    with torch.no_grad():
        for _ in range(6):
            nxt = model(seq).logits[0, -1].argmax()
            seq = torch.cat([seq, nxt.view(1, 1)], dim=1)
    expected = seq[0, len(ids) :].tolist()
    got = generate(model, tok, PROMPTS[:1], max_new_tokens=6).completion_ids[0]
    assert got == expected[: len(got)] and (len(got) == 6 or got[-1] == tok.eos_token_id)


def test_sampling_is_seeded_and_leaves_the_global_rng_alone():
    tok, model = _setup()
    kw = dict(max_new_tokens=6, do_sample=True, temperature=1.5, num_return_sequences=3)
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a = generate(model, tok, PROMPTS, seed=11, **kw)
    after = torch.rand(1)
    b = generate(model, tok, PROMPTS, seed=11, **kw)
    c = generate(model, tok, PROMPTS, seed=12, **kw)
    assert torch.equal(before, after)
    assert a.completion_ids == b.completion_ids != c.completion_ids
    assert (
        len(a.texts) == 9
        and a.prompt_ids[3] == a.prompt_ids[5] == tok(PROMPTS[1], add_special_tokens=False)["input_ids"]
    )


def test_finished_flags_and_eos_truncation():
    tok, model = _setup(seed=3)
    out = generate(model, tok, PROMPTS * 4, max_new_tokens=5, do_sample=True, temperature=3.0, seed=0)
    for ids, done in zip(out.completion_ids, out.finished):
        assert tok.eos_token_id not in ids[:-1]
        assert done == (ids[-1] == tok.eos_token_id)
        assert done or len(ids) == 5


def test_small_batches_give_the_same_answers_and_text_is_stripped():
    tok, model = _setup()
    assert (
        generate(model, tok, PROMPTS, max_new_tokens=6, batch_size=1).texts
        == generate(model, tok, PROMPTS, max_new_tokens=6).texts
    )
    assert all(t == t.strip() for t in generate_text(model, tok, PROMPTS, max_new_tokens=4))


def test_bad_arguments_raise():
    tok, model = _setup()
    with pytest.raises(ValueError, match="num_return_sequences"):
        generate(model, tok, PROMPTS, num_return_sequences=2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, tok, PROMPTS, max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, tok, PROMPTS, do_sample=True, temperature=0)
    assert generate(model, tok, []).texts == []
