"""The scores against hand computations (derivations in comments) and their sign conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from dc_pdd.scores import (
    count_tokens,
    dc_pdd_score,
    first_occurrence_indices,
    min_k_plus_score,
    min_k_score,
    next_token_moments,
    ppl_score,
    ref_ratio_score,
    token_frequencies,
    zlib_score,
    zlib_text,
)

# counts over a 4-token vocabulary: N = 6, |V| = 4, so f = (c + 1) / 10 = [0.4, 0.2, 0.1, 0.3]
COUNTS = np.array([3, 1, 0, 2])
IDS = np.array([1, 2, 1, 3])
P = np.array([0.5, 0.25, 0.9, 0.1])


def test_laplace_smoothing():
    f = token_frequencies(COUNTS)
    np.testing.assert_allclose(f, [0.4, 0.2, 0.1, 0.3], rtol=1e-15)
    assert f.sum() == pytest.approx(1.0)
    # an unseen token gets 1 / (N + |V|) > 0
    assert f[2] == pytest.approx(1 / 10)


def test_count_tokens_truncates_each_document():
    counts = count_tokens([[0, 1, 1, 3], [2, 2]], 4, max_tokens=3)  # keeps [0, 1, 1] and [2, 2]
    assert counts.tolist() == [1, 2, 2, 0]
    with pytest.raises(ValueError, match="out of range"):
        count_tokens([[4]], 4)


def test_first_occurrence_rule():
    assert first_occurrence_indices([1, 2, 1, 3]).tolist() == [0, 1, 3]
    assert first_occurrence_indices([7, 7, 7]).tolist() == [0]
    assert first_occurrence_indices([3, 1, 3, 2, 1]).tolist() == [0, 1, 3]


def test_dc_pdd_hand_computed():
    f = token_frequencies(COUNTS)
    # first occurrences: positions 0, 1, 3 (token 1 repeats at position 2 and is skipped)
    # alpha = 0.5 ln(1/0.2), 0.25 ln(1/0.1), 0.1 ln(1/0.3) = 0.80472, 0.57565, 0.12040
    alpha = [0.5 * math.log(5), 0.25 * math.log(10), 0.1 * math.log(1 / 0.3)]
    assert dc_pdd_score(np.log(P), IDS, f) == pytest.approx(np.mean(alpha), rel=1e-12)
    # clipping at a = 0.3: min(alpha, 0.3) = 0.3, 0.3, 0.12040
    assert dc_pdd_score(np.log(P), IDS, f, a=0.3) == pytest.approx((0.3 + 0.3 + alpha[2]) / 3, rel=1e-12)
    # a tiny a clips every term: the score is a itself
    assert dc_pdd_score(np.log(P), IDS, f, a=1e-3) == pytest.approx(1e-3)


def test_dc_pdd_ignores_repeated_tokens():
    f = token_frequencies(COUNTS)
    other = P.copy()
    other[2] = 0.01  # the repeat of token 1: not a first occurrence
    assert dc_pdd_score(np.log(other), IDS, f) == dc_pdd_score(np.log(P), IDS, f)


def test_dc_pdd_calibrates_by_frequency():
    # the same probability counts more on a rare token than on a frequent one
    f = token_frequencies(COUNTS)
    rare = dc_pdd_score(np.log([0.5]), [2], f)  # f = 0.1
    common = dc_pdd_score(np.log([0.5]), [0], f)  # f = 0.4
    assert rare == pytest.approx(0.5 * math.log(10)) and common == pytest.approx(0.5 * math.log(2.5))


def test_min_k_float64():
    lp = np.log([0.9, 0.1, 0.5, 0.05, 0.7, 0.3, 0.8, 0.6, 0.2, 0.4])
    # k = 20% of 10 tokens = 2 lowest: ln 0.05 and ln 0.1
    assert min_k_score(lp) == pytest.approx((math.log(0.05) + math.log(0.1)) / 2, rel=1e-14)
    # 4 tokens: int(0.8) = 0, kept at 1 token (the minimum)
    assert min_k_score(lp[:4]) == pytest.approx(math.log(0.05))
    assert min_k_score(lp, k=1.0) == pytest.approx(np.mean(lp))


def test_min_k_counts_the_unscored_first_token():
    # com_det_sco.py: k = int(0.2 * tar_tok_num) with tar_tok_num = len(tokenizer.encode(text)),
    # one more than the scored positions input_ids[1:]. 9 scored tokens: int(0.2 * 10) = 2 tokens
    # (a rule on the 9 scored ones alone would give int(1.8) = 1); 14 scored: int(3.0) = 3.
    lp = np.log([0.9, 0.1, 0.5, 0.05, 0.7, 0.3, 0.8, 0.6, 0.2])
    assert min_k_score(lp) == pytest.approx((math.log(0.05) + math.log(0.1)) / 2, rel=1e-14)
    lp14 = np.log(np.linspace(0.01, 0.95, 14))
    assert min_k_score(lp14) == pytest.approx(
        np.mean(np.log([0.01, 0.01 + 0.94 / 13, 0.01 + 1.88 / 13])), rel=1e-14
    )
    # Min-K%++ counts the scored positions only: int(0.2 * len(mink_plus)) = int(1.8) = 1
    zeros = np.zeros(9)
    assert min_k_plus_score(lp, zeros, np.ones(9)) == pytest.approx(math.log(0.05), rel=1e-14)


def test_min_k_plus_plus_float64():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(10, 6)) * 2
    full = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    ids = rng.integers(0, 6, size=10)
    lp = full[np.arange(10), ids]
    # explicit loops: mu_t = sum_z p_z ln p_z, var_t = sum_z p_z (ln p_z - mu_t)^2
    z = []
    for t in range(10):
        p = np.exp(full[t])
        mu = sum(p[j] * full[t, j] for j in range(6))
        var = sum(p[j] * (full[t, j] - mu) ** 2 for j in range(6))
        z.append((lp[t] - mu) / math.sqrt(var))
    mu, var = next_token_moments(full)
    expected = np.mean(np.sort(z)[:2])
    assert min_k_plus_score(lp, mu, var) == pytest.approx(expected, rel=1e-10)


def test_zlib_text_is_the_official_word_cut():
    # com_det_sco.py cal_met (lang "en"): text = " ".join(t["text"].split()[:max_cha]), max_cha 512:
    # whitespace runs and newlines collapse to one space, and only the first max_cha words are kept
    assert zlib_text("a  b\n\nc\td ", 512) == "a b c d"
    assert zlib_text("w1 w2 w3 w4", 2) == "w1 w2"
    assert zlib_text("w1 w2", 512) == "w1 w2"  # the cpu texts are already in this form
    with pytest.raises(ValueError):
        zlib_text("a b", 0)


def test_ppl_zlib_ref():
    lp = np.log([0.5, 0.25])
    assert ppl_score(lp) == pytest.approx(-1.5 * math.log(2))  # -log PPL = mean log p
    import zlib

    text = "hello hello hello"
    assert zlib_score(lp, text) == pytest.approx(-1.5 * math.log(2) / len(zlib.compress(text.encode())))
    # log PPL_target / log PPL_ref = 1.5 ln2 / 3 ln2 = 0.5, negated
    assert ref_ratio_score(lp, np.log([0.125, 0.125])) == pytest.approx(-0.5)


def test_higher_means_member_for_every_score():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 4, size=12)
    lp_out = np.log(rng.uniform(0.05, 0.5, size=12))
    lp_in = lp_out + 0.5  # every token more likely under the model: a "member"
    mu, var = np.full(12, -2.0), np.full(12, 1.5)
    ref = np.log(np.full(12, 0.05))
    f = token_frequencies(COUNTS)
    pairs = [
        (ppl_score(lp_in), ppl_score(lp_out)),
        (zlib_score(lp_in, "abc abd"), zlib_score(lp_out, "abc abd")),
        (min_k_score(lp_in), min_k_score(lp_out)),
        (min_k_plus_score(lp_in, mu, var), min_k_plus_score(lp_out, mu, var)),
        (ref_ratio_score(lp_in, ref), ref_ratio_score(lp_out, ref)),
        (dc_pdd_score(lp_in, ids, f), dc_pdd_score(lp_out, ids, f)),
    ]
    for member, nonmember in pairs:
        assert member > nonmember


def test_clear_errors():
    f = token_frequencies(COUNTS)
    with pytest.raises(ValueError, match="non-empty"):
        ppl_score([])
    with pytest.raises(ValueError, match="<= 0"):
        min_k_score([0.5, -1.0])
    with pytest.raises(ValueError, match="align"):
        dc_pdd_score(np.log(P), IDS[:3], f)
    with pytest.raises(ValueError, match="out of range"):
        dc_pdd_score(np.log(P), [0, 1, 2, 9], f)
    with pytest.raises(ValueError, match="a must be > 0"):
        dc_pdd_score(np.log(P), IDS, f, a=0.0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        dc_pdd_score(np.log(P), IDS, COUNTS)  # raw counts instead of frequencies
    with pytest.raises(ValueError, match="fraction"):
        min_k_score(np.log(P), k=0.0)
    with pytest.raises(ValueError, match=">= 0"):
        token_frequencies([1, -1])
    with pytest.raises(ValueError, match="shape"):
        min_k_plus_score(np.log(P), np.zeros(3), np.ones(4))
