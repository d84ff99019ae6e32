"""A procedural text taxonomy: a seeded forest of made-up concepts with glosses, examples and ancestors.

A WordNet-like stand-in that needs no download, for extreme multi-label / retrieval experiments
(dexml: input = a concept's gloss, labels = its ancestors; mw-auc: dual-encoder retrieval, whole
top-level branches held out as out-of-distribution).

Generative story (a pure function of ``(TaxonomyConfig, seed)``):

* ``n_domains`` roots (depth 0); every node above ``depth`` gets ``branching`` children (uniform in
  the inclusive range), so leaves sit at depth ``depth``. ``domain`` = index of the root a concept
  descends from.
* Every concept gets a unique made-up ``name`` (a pronounceable pseudo-word) and ``own_words``
  distinctive made-up content words (unique across the whole taxonomy).
* The ``gloss`` mixes ``gloss_own`` of its own words with ``gloss_inherit`` words of every ancestor
  (drawn from that ancestor's own words) and ``noise_words`` random content words of other concepts,
  shuffled and glued by filler words. So an ancestor is recognisable from a descendant's text, deeper
  ancestors through more specific words -- like "a small songbird with ..." naming its hypernyms' traits.
* Each of the ``n_examples`` example sentences draws its own words afresh (``example_own`` own,
  ``example_inherit`` per ancestor), so examples share content words with the gloss without copying it.
* ``name_in_gloss=True`` additionally writes the parent's name into the gloss (WordNet glosses often
  do, which makes hypernym prediction easy; off by default).

Example::

    tax = make_taxonomy(TaxonomyConfig(n_domains=3, depth=4), seed=0)
    c = tax.concepts[-1]
    c.name, c.gloss, c.examples, c.ancestors, c.domain
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kl", "st", "tr"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
_CODAS = ["", "", "", "n", "r", "s", "l", "k"]
_FILLERS = ["a", "the", "of", "with", "and", "that", "is", "kind", "some", "often", "in", "by"]


@dataclass(frozen=True)
class TaxonomyConfig:
    """Shape of the taxonomy and of its texts."""

    n_domains: int = 4
    """number of top-level branches (roots, depth 0)"""
    depth: int = 5
    """depth of the leaves (roots have depth 0)"""
    branching: tuple[int, int] = (2, 4)
    """children per internal node, uniform in [lo, hi] inclusive"""
    own_words: int = 6
    """distinctive content words per concept"""
    gloss_own: int = 3
    """own words in the gloss"""
    gloss_inherit: int = 2
    """words taken from EACH ancestor's own words into the gloss"""
    n_examples: int = 2
    """example sentences per concept"""
    example_own: int = 2
    """own words per example sentence"""
    example_inherit: int = 1
    """words from each ancestor per example sentence"""
    noise_words: int = 1
    """random content words of other concepts per text (distractors)"""
    name_in_gloss: bool = False
    """write the parent's name into the gloss (makes the parent trivially recoverable)"""

    def validate(self) -> None:
        lo, hi = self.branching
        if self.n_domains < 1 or self.depth < 0 or not 1 <= lo <= hi:
            raise ValueError(f"need n_domains >= 1, depth >= 0, 1 <= branching lo <= hi: {self}")
        if not 1 <= self.gloss_own <= self.own_words or not 0 <= self.example_own <= self.own_words:
            raise ValueError(f"gloss_own/example_own must be <= own_words (gloss_own >= 1): {self}")
        if not 0 <= self.gloss_inherit <= self.own_words or not 0 <= self.example_inherit <= self.own_words:
            raise ValueError(f"gloss_inherit/example_inherit must be in [0, own_words]: {self}")
        if min(self.n_examples, self.noise_words) < 0:
            raise ValueError(f"n_examples and noise_words must be >= 0: {self}")


@dataclass(frozen=True)
class Concept:
    id: int
    """index in ``Taxonomy.concepts`` (parents always come before children)"""
    name: str
    parent: int | None
    ancestors: tuple[int, ...]
    """ids from the root down to the parent (empty for a root)"""
    depth: int
    domain: int
    """index of the top-level branch (the root's id is ``Taxonomy.roots[domain]``)"""
    words: tuple[str, ...]
    """the concept's distinctive content words"""
    gloss: str
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Taxonomy:
    config: TaxonomyConfig
    seed: int
    concepts: tuple[Concept, ...]
    roots: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.concepts)

    def children(self, cid: int) -> list[int]:
        return [c.id for c in self.concepts if c.parent == cid]

    def at_depth(self, depth: int) -> list[int]:
        return [c.id for c in self.concepts if c.depth == depth]

    def in_domain(self, domain: int) -> list[int]:
        return [c.id for c in self.concepts if c.domain == domain]


class _WordMaker:
    """Unique pronounceable pseudo-words (2-3 syllables), never repeating across the taxonomy."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.used: set[str] = set(_FILLERS)

    def __call__(self) -> str:
        while True:
            n = int(self.rng.integers(2, 4))
            w = (
                "".join(
                    _ONSETS[self.rng.integers(len(_ONSETS))] + _VOWELS[self.rng.integers(len(_VOWELS))]
                    for _ in range(n)
                )
                + _CODAS[self.rng.integers(len(_CODAS))]
            )
            if w not in self.used:
                self.used.add(w)
                return w


def _sentence(rng: np.random.Generator, content: list[str], lead: str) -> str:
    """Shuffle content words and interleave fillers: 'lead w1 of w2 with w3 ...'."""
    content = [content[i] for i in rng.permutation(len(content))]
    parts = [lead]
    for w in content:
        if rng.random() < 0.5:
            parts.append(_FILLERS[rng.integers(len(_FILLERS))])
        parts.append(w)
    return " ".join(parts)


def make_taxonomy(cfg: TaxonomyConfig = TaxonomyConfig(), seed: int = 0) -> Taxonomy:
    """Build the taxonomy; identical output for identical ``(cfg, seed)`` (numpy PCG64 only)."""
    cfg.validate()
    rng = np.random.default_rng([seed, 0x7A40])
    words = _WordMaker(rng)
    lo, hi = cfg.branching

    # 1) the tree (breadth-first, so parents precede children) with names and own words
    nodes: list[dict] = []
    frontier = []
    for d in range(cfg.n_domains):
        nodes.append(dict(parent=None, ancestors=(), depth=0, domain=d))
        frontier.append(len(nodes) - 1)
    while frontier:
        nxt = []
        for p in frontier:
            if nodes[p]["depth"] == cfg.depth:
                continue
            for _ in range(int(rng.integers(lo, hi + 1))):
                nodes.append(
                    dict(parent=p, ancestors=(*nodes[p]["ancestors"], p), depth=nodes[p]["depth"] + 1,
                         domain=nodes[p]["domain"])
                )  # fmt: skip
                nxt.append(len(nodes) - 1)
        frontier = nxt
    for n in nodes:
        n["name"] = words()
        n["words"] = tuple(words() for _ in range(cfg.own_words))
    all_words = [w for n in nodes for w in n["words"]]

    def draw(cid: int, n_own: int, n_inherit: int) -> list[str]:
        node = nodes[cid]
        out = list(rng.choice(node["words"], n_own, replace=False)) if n_own else []
        for a in node["ancestors"]:
            if n_inherit:
                out += list(rng.choice(nodes[a]["words"], n_inherit, replace=False))
        out += [all_words[i] for i in rng.integers(len(all_words), size=cfg.noise_words)]
        return [str(w) for w in out]

    # 2) texts
    concepts = []
    for cid, n in enumerate(nodes):
        content = draw(cid, cfg.gloss_own, cfg.gloss_inherit)
        lead = f"a {nodes[n['parent']]['name']}" if cfg.name_in_gloss and n["parent"] is not None else "a"
        gloss = _sentence(rng, content, lead)
        examples = tuple(
            _sentence(rng, draw(cid, cfg.example_own, cfg.example_inherit), f"the {n['name']}")
            for _ in range(cfg.n_examples)
        )
        concepts.append(
            Concept(id=cid, name=n["name"], parent=n["parent"], ancestors=n["ancestors"], depth=n["depth"],
                    domain=n["domain"], words=n["words"], gloss=gloss, examples=examples)
        )  # fmt: skip
    return Taxonomy(config=cfg, seed=seed, concepts=tuple(concepts), roots=tuple(range(cfg.n_domains)))
