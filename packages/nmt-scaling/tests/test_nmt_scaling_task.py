"""The synthetic language pair: the exact loss floor, the rewrite rules, determinism, clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nmt_scaling.task import EOS, PAD, Batch, Task, TaskConfig, show


def test_l_inf_closed_form_by_hand_and_by_monte_carlo():
    # one noun lemma with k synonyms: E[ln k] = ln k. With p_adj = 0 and p_pp = 0 every sentence is
    # det noun verb det noun EOS (6 tokens) with 2 nouns: L_inf = 2 ln k / 6 exactly, and every sample's
    # Bayes loss equals it (no randomness in the sentence shape)
    cfg = TaskConfig(n_nouns=1, max_synonyms=3, p_adj=0.0, p_pp=0.0, seed=0)
    task = Task(cfg)
    k = int(task.k[0])
    assert task.l_inf == pytest.approx(2 * math.log(k) / 6)
    b = task.sample(50, seed=1)
    assert (b.tgt != PAD).sum(axis=1).tolist() == [6] * 50
    assert task.bayes_loss(b) == pytest.approx(2 * math.log(k) / 6)
    # the default lexicon: the closed form agrees with a large sample (ratio estimator, O(1/sqrt n))
    t = Task()
    assert t.bayes_loss(t.sample(100_000, seed=3)) == pytest.approx(t.l_inf, rel=0.01)
    assert 0.1 < t.l_inf < 0.3


def test_sampling_is_deterministic_and_seeds_differ():
    t = Task()
    a, b, c = t.sample(64, 5), t.sample(64, 5), t.sample(64, 6)
    np.testing.assert_array_equal(a.src, b.src)
    np.testing.assert_array_equal(a.tgt, b.tgt)
    assert not np.array_equal(a.src[:, :5], c.src[:, :5])
    # the lexicon is fixed by TaskConfig.seed, whatever the sampling seed
    np.testing.assert_array_equal(Task().perm, t.perm)


def test_every_row_ends_in_eos_and_lengths_match():
    t = Task()
    b = t.sample(500, 0)
    for arr in (b.src, b.tgt):
        lengths = (arr != PAD).sum(axis=1)
        assert np.all(arr[np.arange(arr.shape[0]), lengths - 1] == EOS)
        assert np.all(arr < max(t.src_vocab, t.tgt_vocab))
    # the target is a reordering of the source words: same number of tokens per sentence
    np.testing.assert_array_equal((b.src != PAD).sum(1), (b.tgt != PAD).sum(1))
    assert b.src.max() < t.src_vocab and b.tgt.max() < t.tgt_vocab


def _rows_with_same_source(t: Task, n: int, seed: int) -> tuple[Batch, dict]:
    b = t.sample(n, seed)
    groups: dict[bytes, list[int]] = {}
    for i in range(n):
        groups.setdefault(b.src[i].tobytes(), []).append(i)
    return b, groups


def test_target_given_source_varies_only_at_noun_positions():
    # a tiny lexicon so that identical source sentences recur; their targets may differ only where a
    # noun with k > 1 synonyms stands, i.e. the synonym choice is the only randomness
    cfg = TaskConfig(n_nouns=2, n_verbs=1, n_adjs=1, n_preps=1, n_dets=1, max_synonyms=3, p_adj=0.0,
                     p_pp=0.0, seed=4)  # fmt: skip
    t = Task(cfg)
    b, groups = _rows_with_same_source(t, 400, 0)
    noun_ids = set(t.perm[t._t_noun.ravel()].tolist())
    seen_variation = False
    for rows in groups.values():
        tg = b.tgt[rows]
        differs = np.any(tg != tg[0], axis=0)
        seen_variation |= bool(differs.any())
        for pos in np.flatnonzero(differs):
            assert set(tg[:, pos].tolist()) <= noun_ids
    assert seen_variation


def test_verb_agrees_with_the_subject_and_comes_last():
    t = Task()
    b = t.sample(300, 2)
    verb_table = t.perm[t._t_verb]  # (verb, gender, number) -> target id
    inv = {int(v): idx for idx, v in np.ndenumerate(verb_table)}
    src_noun = {int(v): idx for idx, v in np.ndenumerate(t.s_noun)}  # (lemma, number)
    for i in range(b.src.shape[0]):
        n_tok = int((b.tgt[i] != PAD).sum())
        verb_tok = int(b.tgt[i, n_tok - 2])  # last word before EOS
        assert verb_tok in inv
        v, g, nb = inv[verb_tok]
        # the subject noun is the first source noun
        subj = next(src_noun[int(x)] for x in b.src[i] if int(x) in src_noun)
        assert (g, nb) == (int(t.gender[subj[0]]), subj[1])
        assert int(t.s_verb[v]) in b.src[i].tolist()


def test_show_spells_a_sentence_pair():
    t = Task()
    s, g = show(t, t.sample(3, 0), 1)
    assert s.endswith("<eos>") and g.endswith("<eos>")
    assert len(s.split()) == len(g.split())


def test_clear_errors():
    with pytest.raises(ValueError, match="n_nouns"):
        TaskConfig(n_nouns=0)
    with pytest.raises(ValueError, match="p_pp"):
        TaskConfig(p_pp=1.5)
    with pytest.raises(ValueError, match="zipf"):
        TaskConfig(zipf=-1.0)
    with pytest.raises(ValueError, match="n must be"):
        Task().sample(0, 0)


def test_case_markers_are_a_deterministic_table_and_l_inf_counts_them():
    # one noun lemma, no adjectives or PP: det noun MARK det noun MARK verb EOS (8 tokens, 2 nouns), so
    # L_inf = 2 ln k / 8 exactly (the markers are deterministic: they add tokens, not entropy)
    cfg = TaskConfig(n_nouns=1, max_synonyms=3, p_adj=0.0, p_pp=0.0, seed=0, n_cases=4)
    t = Task(cfg)
    k = int(t.k[0])
    assert t.l_inf == pytest.approx(2 * math.log(k) / 8)
    b = t.sample(50, seed=1)
    assert (b.tgt != PAD).sum(axis=1).tolist() == [8] * 50
    assert t.bayes_loss(b) == pytest.approx(2 * math.log(k) / 8)
    # the default hard pair: closed form vs a large sample; the rest of the lexicon is unchanged
    h, o = Task(TaskConfig(n_cases=4)), Task()
    assert h.bayes_loss(h.sample(100_000, seed=3)) == pytest.approx(h.l_inf, rel=0.01)
    np.testing.assert_array_equal(h.gender, o.gender)
    np.testing.assert_array_equal(h.k, o.k)
    assert h.tgt_vocab == o.tgt_vocab + 4 and h.case.shape == (24, 2, 48)


def test_case_marker_follows_each_argument_noun_and_is_read_from_the_table():
    t = Task(TaskConfig(n_cases=4, p_adj=0.0, p_pp=0.0))
    b = t.sample(200, 7)
    inv = {int(t.perm[v]): i for i, v in enumerate(t._t_case)}
    src_noun = {int(v): idx for idx, v in np.ndenumerate(t.s_noun)}
    src_verb = {int(v): i for i, v in enumerate(t.s_verb)}
    for i in range(b.src.shape[0]):
        # source: det noun verb det noun EOS; target: det noun MARK det noun MARK verb EOS
        (subj, _), verb, (obj, _) = (
            src_noun[int(b.src[i, 1])],
            src_verb[int(b.src[i, 2])],
            src_noun[int(b.src[i, 4])],
        )
        assert inv[int(b.tgt[i, 2])] == t.case[verb, 0, subj]
        assert inv[int(b.tgt[i, 5])] == t.case[verb, 1, obj]
    # the same source always gets the same markers (the table has no randomness per sentence)
    assert len({int(x) for x in b.tgt[:, 2]}) > 1


def test_n_cases_errors():
    with pytest.raises(ValueError, match="n_cases"):
        TaskConfig(n_cases=1)
    with pytest.raises(ValueError, match="n_cases"):
        TaskConfig(n_cases=-2)
