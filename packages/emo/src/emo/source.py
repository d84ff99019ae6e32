"""A synthetic language with synonyms: an order-2 Markov source over words grouped into synonym clusters.

Why: EMO's cost C(i, j) = 1 - cos(e_i, e_j) only matters if the vocabulary has geometry, i.e. words
that are (nearly) interchangeable. Here every word belongs to one cluster of 2+ synonyms and the
source is indifferent between synonyms as CONTEXT: the next-word law depends on the previous two
words only through their clusters,

    P(y | x_{t-2}, x_{t-1}) = P_cl(c(y) | c(x_{t-2}), c(x_{t-1})) * w(y | c(y)),

with w(. | c) a near-uniform within-cluster law (Dirichlet(``within_alpha``), the same in both
domains). The cluster chain is a sparse random order-2 chain with Zipf-popular successors (a Zipf
vocabulary): each cluster context has ``support`` successor clusters drawn with weight (j+1)^-zipf,
Dirichlet(``concentration``) weights, mixed with ``eps`` uniform mass.

Two domains share clusters, within-cluster laws and successor supports, and differ in the transition
WEIGHTS: domain A (pretraining) and domain B (fine-tuning) draw their Dirichlet weights with
different seeds. The word-level table is handed to ``xentlab.data.markov_source.MarkovSource``
(``from_table``), which gives exact stationary sampling and exact log P under each domain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from xentlab.data.markov_source import MarkovSource


@dataclass(frozen=True)
class SynonymSourceConfig:
    """vocab_size words in n_clusters synonym clusters (each >= 2 words; sizes random, mean V/K);
    support / concentration / zipf / eps: the cluster chain (see the module docstring);
    within_alpha: Dirichlet concentration of the within-cluster word law (large = synonyms equally
    likely); seed: clusters, supports and within-cluster laws; seed_a / seed_b: transition weights
    of domain A (pretraining) and B (fine-tuning)."""

    vocab_size: int = 64
    n_clusters: int = 16
    support: int = 4
    concentration: float = 0.5
    zipf: float = 1.0
    eps: float = 0.02
    within_alpha: float = 4.0
    seed: int = 2310
    seed_a: int = 1
    seed_b: int = 2

    def __post_init__(self) -> None:
        if self.n_clusters < 2 or self.vocab_size < 2 * self.n_clusters:
            raise ValueError(f"need n_clusters >= 2 and vocab_size >= 2 * n_clusters, got {self}")
        if not 1 <= self.support <= self.n_clusters:
            raise ValueError(f"support must be in 1..n_clusters={self.n_clusters}, got {self.support}")
        if not 0 <= self.eps < 1 or self.concentration <= 0 or self.within_alpha <= 0 or self.zipf < 0:
            raise ValueError(f"bad source parameters: {self}")
        if self.seed_a == self.seed_b:
            raise ValueError("seed_a and seed_b must differ (the domains must differ)")


class SynonymSource:
    """``.cluster_of`` (V,), ``.domain("A"|"B") -> MarkovSource`` (cached), ``.describe()``."""

    def __init__(self, cfg: SynonymSourceConfig):
        self.cfg = cfg
        rng = np.random.default_rng(cfg.seed)
        v, k = cfg.vocab_size, cfg.n_clusters
        sizes = 2 + rng.multinomial(v - 2 * k, np.full(k, 1.0 / k))
        self.cluster_sizes = sizes
        # words are shuffled over clusters so that word ids carry no cluster information
        self.cluster_of = rng.permutation(np.repeat(np.arange(k), sizes))
        self.within = np.zeros(v)
        for c in range(k):
            idx = np.flatnonzero(self.cluster_of == c)
            self.within[idx] = rng.dirichlet(np.full(len(idx), cfg.within_alpha))
        # successor supports: s distinct clusters per cluster context (c1, c2), Zipf-weighted
        # (Gumbel-top-s sampling without replacement)
        log_w = -cfg.zipf * np.log(np.arange(1, k + 1))
        self.supports = np.argsort(-(log_w + rng.gumbel(size=(k * k, k))), axis=1)[:, : cfg.support]
        self._domains: dict[str, MarkovSource] = {}

    def cluster_table(self, domain: str) -> np.ndarray:
        """P_cl(c | c1, c2) as (K, K, K) for domain "A" or "B"."""
        if domain not in ("A", "B"):
            raise ValueError(f"domain must be 'A' or 'B', got {domain!r}")
        cfg, k = self.cfg, self.cfg.n_clusters
        rng = np.random.default_rng([cfg.seed, cfg.seed_a if domain == "A" else cfg.seed_b])
        table = np.zeros((k * k, k))
        w = rng.dirichlet(np.full(cfg.support, cfg.concentration), size=k * k)
        np.put_along_axis(table, self.supports, w, axis=1)
        table = (1.0 - cfg.eps) * table + cfg.eps / k
        return table.reshape(k, k, k)

    def word_table(self, domain: str) -> np.ndarray:
        """P(y | x1, x2) as (V, V, V): cluster transition of the contexts' clusters times w(y | c(y))."""
        cl = self.cluster_table(domain)
        c = self.cluster_of
        return cl[c[:, None], c[None, :]][:, :, c] * self.within[None, None, :]

    def domain(self, domain: str) -> MarkovSource:
        if domain not in self._domains:
            self._domains[domain] = MarkovSource.from_table(self.word_table(domain))
        return self._domains[domain]

    def describe(self) -> dict:
        out = {"config": asdict(self.cfg), "cluster_sizes": self.cluster_sizes.tolist()}
        for d in ("A", "B"):
            out[f"entropy_rate_{d}_nats"] = self.domain(d).entropy_rate
        return out
