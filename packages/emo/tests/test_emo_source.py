"""The synonym source: exact tables, synonym indifference as context, domain shift."""

from __future__ import annotations

import numpy as np
import pytest
from emo.source import SynonymSource, SynonymSourceConfig

CFG = SynonymSourceConfig(vocab_size=16, n_clusters=4, support=2)


def test_tables_are_distributions_and_synonyms_are_interchangeable_contexts():
    src = SynonymSource(CFG)
    assert np.bincount(src.cluster_of).min() >= 2
    for d in ("A", "B"):
        t = src.word_table(d)
        np.testing.assert_allclose(t.sum(-1), 1.0, atol=1e-12)
        # two synonyms as the previous word give the same next-word law
        a, b = np.flatnonzero(src.cluster_of == 0)[:2]
        np.testing.assert_array_equal(t[3, a], t[3, b])
        # P(y | .) = P_cl(c(y) | .) w(y | c(y)), by hand for one entry
        c = src.cluster_of
        assert t[1, 2, 5] == pytest.approx(src.cluster_table(d)[c[1], c[2], c[5]] * src.within[5])
    assert not np.allclose(src.word_table("A"), src.word_table("B"))  # shifted domain


def test_log_prob_is_exact_and_deterministic():
    src = SynonymSource(CFG)
    b = src.domain("B")
    x = b.sample_batch(3, 6, seed=0)
    np.testing.assert_array_equal(x, SynonymSource(CFG).domain("B").sample_batch(3, 6, seed=0))
    t = src.word_table("B")
    assert b.log_prob(x)[1, 2] == pytest.approx(np.log(t[x[1, 2], x[1, 3], x[1, 4]]))


def test_bad_config():
    with pytest.raises(ValueError, match="n_clusters"):
        SynonymSourceConfig(vocab_size=6, n_clusters=4)
    with pytest.raises(ValueError, match="seed_a and seed_b"):
        SynonymSourceConfig(seed_a=3, seed_b=3)
    with pytest.raises(ValueError, match="domain"):
        SynonymSource(CFG).cluster_table("C")
