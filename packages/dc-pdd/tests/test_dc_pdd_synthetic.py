"""The synthetic corpus: determinism, vocabulary ranges, the commonness knob, disjoint splits."""

from __future__ import annotations

import numpy as np
from dc_pdd.synthetic import N_SPECIAL, CorpusConfig, as_text, make_corpus, with_bos

CFG = CorpusConfig(n_member=20, n_nonmember=20, n_filler=10, n_reference=30)


def test_deterministic_and_in_range():
    a, b = make_corpus(CFG, 3), make_corpus(CFG, 3)
    for split in a:
        assert all(np.array_equal(x, y) for x, y in zip(a[split].ids, b[split].ids, strict=True))
        for d in a[split].ids:
            assert CFG.min_len <= len(d) <= CFG.max_len
            assert d.min() >= N_SPECIAL and d.max() < CFG.vocab_size
    assert len(a["member_dev"].ids) == 10 and len(a["nonmember_test"].ids) == 10
    c = make_corpus(CFG, 4)
    assert not np.array_equal(a["member_dev"].ids[0], c["member_dev"].ids[0])


def test_commonness_sets_the_share_of_common_words():
    docs = make_corpus(CorpusConfig(n_member=200, n_nonmember=2, n_filler=1, n_reference=1), 0)
    m = docs["member_dev"]
    share = np.array([np.mean(d < N_SPECIAL + CFG.head_words) for d in m.ids])
    assert np.corrcoef(share, m.commonness)[0, 1] > 0.9


def test_splits_are_disjoint():
    docs = make_corpus(CFG, 0)
    seen = {}
    for split, d in docs.items():
        for ids in d.ids:
            seen.setdefault(tuple(ids.tolist()), set()).add(split)
    assert all(len(s) == 1 for s in seen.values())


def test_text_helpers():
    assert with_bos(np.array([5, 6])) == [1, 5, 6, 2]
    assert as_text(np.array([5, 6])) == "w5 w6"
