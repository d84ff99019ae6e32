"""The procedural tagging task: deterministic from a seed, the O:entity knob hits its target, tags are
valid BIO, the cues behave as documented, splits are independent streams, bad configs fail clearly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xentlab.data.tagging import PAD, TaggingConfig, make_tagging, o_entity_ratio, pad_batch

SMALL = TaggingConfig(n_train=300, n_val=50, n_test=50)


def test_deterministic_from_seed():
    a, b, c = make_tagging(SMALL, 1), make_tagging(SMALL, 1), make_tagging(SMALL, 2)
    for x, y in zip(a.train.tokens + a.train.tags, b.train.tokens + b.train.tags):
        assert np.array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(a.train.tokens, c.train.tokens))


def test_no_shared_words_is_a_valid_world():
    # n_shared = 0 used to crash (np.stack of an empty list); the world just has no shared words
    data = make_tagging(dataclasses.replace(SMALL, n_shared=0), 0)
    assert len(data.train.tokens) == SMALL.n_train and len(data.test.tags) == SMALL.n_test


def test_split_streams_are_independent():
    a = make_tagging(SMALL, 0)
    b = make_tagging(dataclasses.replace(SMALL, n_test=120), 0)
    assert all(np.array_equal(x, y) for x, y in zip(a.train.tokens, b.train.tokens))
    assert all(np.array_equal(x, y) for x, y in zip(a.val.tags, b.val.tags))
    assert len(b.test) == 120


@pytest.mark.parametrize("ratio", [5.0, 50.0])
def test_ratio_knob(ratio):
    data = make_tagging(TaggingConfig(n_train=1500, n_val=1, n_test=1, o_per_entity=ratio), 0)
    # label noise drops ~2.5% of spans to O, so the measured ratio sits a little above the target
    assert ratio * 0.85 < o_entity_ratio(data.train) < ratio * 1.25


def test_valid_bio_and_token_ranges():
    data = make_tagging(SMALL, 3)
    names = data.tag_names
    assert names[0] == "O" and names[1:3] == ["B-PER", "I-PER"] and data.num_tags == 7
    for toks, tags in zip(data.train.tokens, data.train.tags):
        assert len(toks) == len(tags) > 0
        assert toks.min() > PAD and toks.max() < data.vocab_size
        prev = "O"
        for tag in data.tag_strings(tags):
            if tag.startswith("I-"):
                assert prev[2:] == tag[2:], "I- must continue a span of its type"
            prev = tag


def test_cues():
    # without label noise every lexicon token is an entity token, ambiguous words are entities only
    # right after a trigger (or inside such a span) and O elsewhere, and triggers are always O
    cfg = dataclasses.replace(SMALL, n_train=600, label_noise=0.0)
    data = make_tagging(cfg, 0)
    lex_lo = 1 + cfg.filler_vocab + cfg.n_ambiguous
    lex_hi = lex_lo + cfg.n_types * cfg.lexicon_per_type + cfg.n_shared
    amb = range(1 + cfg.filler_vocab, lex_lo)
    trig_lo = lex_hi
    toks, tags = np.concatenate(data.train.tokens), np.concatenate(data.train.tags)
    lex = (toks >= lex_lo) & (toks < lex_hi)
    assert lex.any() and np.all(tags[lex] > 0)
    assert np.all(tags[toks >= trig_lo] == 0)
    is_amb = np.isin(toks, list(amb))
    assert (tags[is_amb] > 0).any() and (tags[is_amb] == 0).any()
    # with noise, some lexicon tokens are O or retyped
    noisy = make_tagging(dataclasses.replace(cfg, label_noise=0.5), 0)
    nt, ng = np.concatenate(noisy.train.tokens), np.concatenate(noisy.train.tags)
    assert (ng[(nt >= lex_lo) & (nt < lex_hi)] == 0).any()


def test_pad_batch():
    out = pad_batch([np.array([1, 2, 3]), np.array([4])], -100)
    assert out.tolist() == [[1, 2, 3], [4, -100, -100]]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"n_types": 0}, "n_types"),
        ({"n_types": 1}, "n_shared"),
        ({"filler_len": (5, 2)}, "filler_len"),
        ({"o_per_entity": 0.1}, "too small"),
        ({"label_noise": 1.5}, "label_noise"),
    ],
)
def test_bad_config(change, match):
    with pytest.raises(ValueError, match=match):
        make_tagging(dataclasses.replace(SMALL, **change), 0)
