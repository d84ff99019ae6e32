"""Synthetic "language families": the data the multilingual scaling law is tested on.

The paper's hypothesis (He et al. 2024, abstract and §3): the test loss of a LANGUAGE FAMILY depends only
on that family's own sampling ratio p_i, because languages inside a family transfer to each other strongly
while families barely do. The design below builds exactly that setting, with every quantity known:

* A family f is one seeded random sparse order-k Markov source over v symbols
  (``xentlab.data.markov_source``; its entropy rate H_f is exact). Families use different source seeds
  (and supports), so their transition structure is unrelated.
* A language inside family f is a *partial cipher* of the family source: a fixed permutation that moves
  ``swap_frac`` of the v symbols (a derangement of a random subset) and leaves the rest, so the languages
  of a family share most of their structure (like related languages sharing most subwords). A cipher is a
  bijection, so every language has exactly the family's entropy rate.
* All languages of family f write into the family's own token block [offset_f, offset_f + v) of one
  shared vocabulary of sum_f v_f tokens (one vocabulary budget, one embedding table); families do not
  share tokens, the model is shared.
* A family's "natural" corpus size is proportional to its number of languages (every language has the
  same amount of text), which gives the natural sampling ratios.

Why this matches the hypothesis setting: within a family the languages differ only by a few symbol
renamings (strong transfer, the reason the paper groups languages), across families nothing is shared but
the model's capacity. The risk is that this makes independence *too easy*: the only channel left for the
other families to matter is capacity competition. The SHARED-STRUCTURE CONTROL (``control_families``)
therefore relabels a cipher of family A as a separate "family" A' in A's own token block; there the other
families' split should visibly move A's loss, showing that the independence test can fail.

Each training or test sequence is monolingual: one language, a window of a stationary stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from xentlab.data.markov_source import MarkovSource, MarkovSourceConfig


@dataclass(frozen=True)
class FamilySpec:
    """One language family.

    name: label used in metric names.
    source: the family's Markov source (its vocab_size is the family's block size v).
    n_languages: languages in the family (each a partial cipher of the source).
    swap_frac: fraction of the v symbols each language's cipher moves (0 = every language is the source).
    offset: first token id of the family's block in the shared vocabulary.
    cipher_seed: seeds the languages' ciphers (language j uses cipher_seed * 1000 + j).
    """

    name: str
    source: MarkovSourceConfig
    n_languages: int = 1
    swap_frac: float = 0.25
    offset: int = 0
    cipher_seed: int = 0

    def __post_init__(self) -> None:
        if self.n_languages < 1:
            raise ValueError(f"family {self.name!r}: n_languages must be >= 1, got {self.n_languages}")
        if not 0 <= self.swap_frac <= 1:
            raise ValueError(f"family {self.name!r}: swap_frac must be in [0, 1], got {self.swap_frac}")
        if self.offset < 0:
            raise ValueError(f"family {self.name!r}: offset must be >= 0, got {self.offset}")

    @property
    def block(self) -> int:
        return self.source.vocab_size


@dataclass(frozen=True)
class World:
    """A set of families sharing one vocabulary (vocab_size = max token id + 1)."""

    families: tuple[FamilySpec, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if len(self.families) < 2:
            raise ValueError("a multilingual world needs at least 2 families")
        names = [f.name for f in self.families]
        if len(set(names)) != len(names):
            raise ValueError(f"family names must be unique, got {names}")

    @property
    def vocab_size(self) -> int:
        return max(f.offset + f.block for f in self.families)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.families]

    def natural_ratios(self) -> np.ndarray:
        """Sampling ratios proportional to corpus size (= number of languages, equal text per language)."""
        n = np.array([f.n_languages for f in self.families], dtype=np.float64)
        return n / n.sum()


def language_cipher(v: int, swap_frac: float, seed: int) -> np.ndarray:
    """A permutation of range(v) that moves round(swap_frac * v) symbols (a derangement of a random
    subset: each chosen symbol goes to the next chosen one in a random cyclic order) and fixes the rest."""
    rng = np.random.default_rng(seed)
    perm = np.arange(v)
    k = int(round(swap_frac * v))
    if k >= 2:
        chosen = rng.permutation(v)[:k]
        perm[chosen] = np.roll(chosen, 1)  # a k-cycle: no chosen symbol stays in place
    return perm


@lru_cache(maxsize=32)
def _source(cfg: MarkovSourceConfig) -> MarkovSource:
    return MarkovSource(cfg)


def family_source(fam: FamilySpec) -> MarkovSource:
    return _source(fam.source)


def family_ciphers(fam: FamilySpec) -> np.ndarray:
    """(n_languages, v): row j maps family symbols to language-j symbols (before the token offset)."""
    return np.stack(
        [
            language_cipher(fam.block, fam.swap_frac, fam.cipher_seed * 1000 + j)
            for j in range(fam.n_languages)
        ]
    )


def sample_family(fam: FamilySpec, n_seqs: int, length: int, seed: int) -> np.ndarray:
    """(n_seqs, length) token ids: stationary windows of the family source, each sequence written in one
    language drawn uniformly from the family's languages, shifted into the family's token block."""
    if n_seqs == 0:
        return np.zeros((0, length), dtype=np.int64)
    rng = np.random.default_rng([seed, 1])
    x = family_source(fam).sample_batch(n_seqs, length, seed)
    lang = rng.integers(0, fam.n_languages, n_seqs)
    ciphers = family_ciphers(fam)
    return ciphers[lang[:, None], x] + fam.offset


def mixture_stream(
    world: World, ratios, n_seqs: int, length: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A training stream of n_seqs sequences in which family i has exactly round(p_i * n_seqs) sequences
    (largest-remainder rounding), in a random order. Returns (tokens (n_seqs, length), family index)."""
    p = check_ratios(ratios, len(world.families))
    raw = p * n_seqs
    counts = np.floor(raw).astype(int)
    counts[np.argsort(-(raw - counts))[: n_seqs - counts.sum()]] += 1
    parts = [
        sample_family(f, int(c), length, seed * 7919 + 13 * i)
        for i, (f, c) in enumerate(zip(world.families, counts))
    ]
    fam = np.repeat(np.arange(len(counts)), counts)
    order = np.random.default_rng([seed, 2]).permutation(n_seqs)
    return np.concatenate(parts)[order], fam[order]


def check_ratios(ratios, n: int) -> np.ndarray:
    p = np.asarray(ratios, dtype=np.float64)
    if p.shape != (n,):
        raise ValueError(f"need {n} sampling ratios, got shape {p.shape}")
    if np.any(p < 0) or not np.isclose(p.sum(), 1.0, atol=1e-9):
        raise ValueError(f"sampling ratios must be >= 0 and sum to 1, got {p.tolist()}")
    return p


def make_world(cfg: dict) -> World:
    """A World from a JSON-able config: {"families": [{name, source: {...}, n_languages, ...}, ...]}."""
    fams = []
    for f in cfg["families"]:
        f = dict(f)
        f["source"] = MarkovSourceConfig(**f["source"])
        fams.append(FamilySpec(**f))
    return World(tuple(fams))
