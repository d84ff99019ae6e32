"""The offline byte-level BPE tokenizer: exact round trips, special tokens, chat format, cache."""

from __future__ import annotations

import pytest

from xentlab.data.cache import cache_dir
from xentlab.data.facts import tokenizer_corpus
from xentlab.data.tokenizer import (
    BOS,
    CHAT_TEMPLATE,
    EOS,
    PAD,
    chat_prompt,
    chat_response,
    encode_chat,
    get_byte_tokenizer,
    get_tokenizer,
    load_tokenizer,
    pydoc_text,
    train_bpe_tokenizer,
)


def _tok():
    # the tokenizer the LM packages use; trained once per test session (disk cache), then loaded
    return get_tokenizer(tokenizer_corpus(), vocab_size=1024)


def test_pydoc_text_is_english_prose():
    text = pydoc_text()
    assert len(text) > 100_000 and "function" in text


def test_special_tokens_have_fixed_ids_and_nothing_is_added_implicitly():
    tok = _tok()
    assert len(tok) == 1024
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == (PAD, BOS, EOS)
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    ids = tok("<s>hello</s>", add_special_tokens=False)["input_ids"]
    assert ids[0] == 1 and ids[-1] == 2
    assert tok("hello")["input_ids"] == tok("hello", add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize(
    "text", ["Where was Velna Orskov born?", "naïve café — 日本語 ✓", "  two  spaces\n\ttab", ""]
)
def test_byte_level_round_trip_is_exact(text):
    tok = _tok()
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text


def test_byte_tokenizer_gives_one_token_per_character():
    # 256 byte symbols + pad/bos/eos and no merges, so p(answer) is a product over its characters
    tok = get_byte_tokenizer()
    assert len(tok) == 259
    text = "7+6*43=265"
    assert len(tok(text, add_special_tokens=False)["input_ids"]) == len(text)
    assert get_byte_tokenizer() is tok  # cached per process


def test_task_words_get_merges():
    # training on the task's text gives its frequent words single tokens (the point of adding it)
    tok = _tok()
    assert len(tok(" birthplace", add_special_tokens=False)["input_ids"]) == 1


def test_chat_template_renders_what_the_helpers_build():
    tok = _tok()
    q, a = "What genre does Velna Orskov write?", "Velna Orskov writes poetry."
    assert tok.chat_template == CHAT_TEMPLATE
    full = tok.apply_chat_template(
        [{"role": "user", "content": q}, {"role": "assistant", "content": a}], tokenize=False
    )
    assert full == chat_prompt(q) + chat_response(a) == f"<s>User: {q}\nAssistant: {a}</s>"
    gen = tok.apply_chat_template(
        [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
    )
    assert gen == chat_prompt(q)


def test_encode_chat_splits_prompt_and_response_exactly():
    tok = _tok()
    ids, n = encode_chat(tok, "Who?", "Nobody.")
    assert tok.decode(ids[:n]) == chat_prompt("Who?")
    assert tok.decode(ids[n:]) == chat_response("Nobody.")
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id


def test_cache_returns_the_same_tokenizer_and_saves_loadable_files(tmp_path):
    a = _tok()
    entries = sorted(p.name for p in cache_dir("tokenizers").iterdir() if not p.name.startswith("."))
    b = _tok()
    assert sorted(p.name for p in cache_dir("tokenizers").iterdir() if not p.name.startswith(".")) == entries
    assert a.get_vocab() == b.get_vocab()
    a.save_pretrained(str(tmp_path))
    c = load_tokenizer(tmp_path)
    text = "The first book of Velna Orskov was The Salt Lantern."
    assert c(text)["input_ids"] == a(text)["input_ids"] and c.chat_template == CHAT_TEMPLATE


def test_training_is_deterministic():
    texts = ["the cat sat on the mat", "the dog sat on the log"] * 20
    a = train_bpe_tokenizer(texts, vocab_size=280, min_frequency=1)
    b = train_bpe_tokenizer(texts, vocab_size=280, min_frequency=1)
    assert a.get_vocab() == b.get_vocab()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe_tokenizer(["x"], vocab_size=100)
    with pytest.raises(ValueError, match="no text"):
        get_tokenizer([], include_pydoc=False)
