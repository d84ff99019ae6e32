"""A synthetic pretraining corpus with a known member / non-member split and a "commonness" confound.

Every document mixes two kinds of words (Sec. 1 of the paper: PPL and Min-K% "over-rely" on token
probability, so texts made of frequent tokens look like members):

* common words: a small head vocabulary whose order follows a fixed sparse first-order Markov chain
  (``xentlab.data.markov_source``), a "template" any model trained on the language predicts well;
* rare words: drawn i.i.d. from a Zipf distribution over a large tail vocabulary, unpredictable
  unless the model has memorised the document.

Each document draws its commonness c ~ U(c_lo, c_hi), the probability that a position holds a common
word. Non-members with large c get a high likelihood from any model of the language, which fools
PPL and Min-K%; members with small c are mostly rare words that the model has memorised only
partly. Token ids: 0 pad, 1 <s>, 2 </s>, 3.. words (common words first).

Splits of one seed (all disjoint, all from the same generator): members (trained on for several
epochs, split into dev and test halves), non-members (dev and test), filler (trained on once: the
rest of "pretraining"), reference (never trained on: the public corpus D' for f(v), Sec. 3.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xentlab.data.markov_source import MarkovSource, MarkovSourceConfig

N_SPECIAL = 3  # pad, bos, eos
BOS, EOS = 1, 2


@dataclass(frozen=True)
class CorpusConfig:
    """Shape of the synthetic corpus.

    head_words: common words (the template chain's states). tail_words: rare words.
    tail_zipf: Zipf exponent of the rare words (rank r has weight (r + 1)^-tail_zipf).
    chain_support: successors per common word (small = predictable template).
    min_len, max_len: document length in words (uniform). c_lo, c_hi: range of the commonness.
    n_member, n_nonmember: per split (dev + test together; half each). n_filler, n_reference: docs.
    """

    head_words: int = 48
    tail_words: int = 464
    tail_zipf: float = 0.8
    chain_support: int = 2
    min_len: int = 32
    max_len: int = 48
    c_lo: float = 0.2
    c_hi: float = 0.95
    n_member: int = 400
    n_nonmember: int = 400
    n_filler: int = 2000
    n_reference: int = 4000

    @property
    def vocab_size(self) -> int:
        return N_SPECIAL + self.head_words + self.tail_words


@dataclass
class Docs:
    """Documents (word-token ids, without <s>/</s>) and their commonness."""

    ids: list[np.ndarray]
    commonness: np.ndarray


def _generate(cfg: CorpusConfig, chain: MarkovSource, n: int, rng: np.random.Generator) -> Docs:
    lengths = rng.integers(cfg.min_len, cfg.max_len + 1, size=n)
    c = rng.uniform(cfg.c_lo, cfg.c_hi, size=n)
    head = chain.sample_batch(n, cfg.max_len, seed=int(rng.integers(2**31)))
    tail_p = (np.arange(cfg.tail_words) + 1.0) ** -cfg.tail_zipf
    tail_p /= tail_p.sum()
    docs = []
    for i in range(n):
        is_head = rng.random(lengths[i]) < c[i]
        out = np.empty(lengths[i], dtype=np.int64)
        # the template chain advances only when a common word is emitted, so a document's common
        # words read as one coherent template run interrupted by rare words
        out[is_head] = N_SPECIAL + head[i, : int(is_head.sum())]
        out[~is_head] = (
            N_SPECIAL + cfg.head_words + rng.choice(cfg.tail_words, size=int((~is_head).sum()), p=tail_p)
        )
        docs.append(out)
    return Docs(docs, c)


def make_corpus(cfg: CorpusConfig, seed: int) -> dict[str, Docs]:
    """All splits for one seed: the language (template chain) and every sample depend on ``seed``."""
    chain = MarkovSource(
        MarkovSourceConfig(
            vocab_size=cfg.head_words,
            order=1,
            support=cfg.chain_support,
            concentration=1.0,
            eps=0.01,
            seed=seed,
        )
    )
    rng = np.random.default_rng(seed + 1000)
    half_m, half_n = cfg.n_member // 2, cfg.n_nonmember // 2
    members = _generate(cfg, chain, cfg.n_member, rng)
    nonmembers = _generate(cfg, chain, cfg.n_nonmember, rng)

    def part(d: Docs, sl: slice) -> Docs:
        return Docs(d.ids[sl], d.commonness[sl])

    return {
        "member_dev": part(members, slice(0, half_m)),
        "member_test": part(members, slice(half_m, None)),
        "nonmember_dev": part(nonmembers, slice(0, half_n)),
        "nonmember_test": part(nonmembers, slice(half_n, None)),
        "filler": _generate(cfg, chain, cfg.n_filler, rng),
        "reference": _generate(cfg, chain, cfg.n_reference, rng),
    }


def with_bos(ids: np.ndarray) -> list[int]:
    """<s> + words + </s>: <s> gives the first word a context, so every word is scored."""
    return [BOS, *ids.tolist(), EOS]


def as_text(ids: np.ndarray) -> str:
    """A readable text for the zlib baseline: one pseudo-word per token ("w17 w403 ...")."""
    return " ".join(f"w{int(t)}" for t in ids)
