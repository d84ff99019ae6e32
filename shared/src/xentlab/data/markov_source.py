"""A random sparse order-k Markov source over V symbols with an exactly known entropy rate.

Scaling-law papers interpret the irreducible term of a power-law-plus-constant fit as the entropy of
the true data distribution (Henighan et al. 2020, arXiv 2010.14701: L = S(True) + D_KL(True||Model)).
On real data that entropy is unknown; on this source it is computed exactly, so a fitted L_inf can be
checked against the truth.

The source. Every context c = (x_{t-k}, ..., x_{t-1}) in V^k gets its own next-symbol distribution:
``support`` distinct successors drawn at random (uniformly, or Zipf-weighted with ``zipf`` > 0), with weights ~ Dirichlet(``concentration``),
then mixed with the uniform distribution, P(.|c) = (1 - eps) * sparse(.|c) + eps / V. The mixing makes
every context reachable from every other in k steps, so the context chain is irreducible and
aperiodic: it has one stationary distribution pi and the entropy rate is well defined.

Entropy rate (Cover & Thomas, Thm 4.2.4, for a stationary Markov chain on the context space):

    H = sum_c pi(c) * H(P(.|c))            [nats/token]

pi is the left fixed point of the context transition matrix T[c, c'] = P(y|c) for c' = (c[1:], y),
found by a sparse linear solve (pi (T - I) = 0, sum pi = 1), exact to float64 precision.

``sample(n_tokens, seed)`` draws one stationary stream (its first context is drawn from pi);
``sample_batch(n_seqs, length, seed)`` draws independent stationary sequences, vectorised over the
sequences. ``log_prob`` scores a stream under the true model, so that the true model's empirical loss
on a finite sample can be compared with H (it converges to H by the ergodic theorem).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class MarkovSourceConfig:
    """Shape of the source.

    vocab_size: V, the number of symbols (>= 2).
    order: k, the number of previous symbols the next one depends on (>= 0; 0 is an i.i.d. source).
    support: successors with non-negligible probability per context (1..V); small = sparse = low entropy.
    concentration: Dirichlet concentration of the successor weights (> 0); small = skewed weights.
    eps: weight of the uniform mixture, in [0, 1); > 0 guarantees one stationary distribution.
    zipf: popularity exponent of the symbols as successors (>= 0): symbol j is drawn into a context's
        support with weight (j + 1)^-zipf (0 = uniform). > 0 makes symbol and context frequencies
        heavy-tailed, as in natural data, so a few contexts are frequent and many are rare.
    seed: draws the transition table; the same seed gives the same source on every machine.
    """

    vocab_size: int = 32
    order: int = 2
    support: int = 4
    concentration: float = 0.5
    eps: float = 0.02
    zipf: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        if self.order < 0:
            raise ValueError(f"order must be >= 0, got {self.order}")
        if not 1 <= self.support <= self.vocab_size:
            raise ValueError(f"support must be in 1..vocab_size={self.vocab_size}, got {self.support}")
        if not self.concentration > 0:
            raise ValueError(f"concentration must be > 0, got {self.concentration}")
        if not 0 <= self.eps < 1:
            raise ValueError(f"eps must be in [0, 1), got {self.eps}")
        if not self.zipf >= 0:
            raise ValueError(f"zipf must be >= 0, got {self.zipf}")
        if self.vocab_size ** (self.order + 1) > 2**26:
            raise ValueError(
                f"vocab_size**(order+1) = {self.vocab_size ** (self.order + 1)} transition entries is too "
                "large (limit 2**26)"
            )


def _entropy_nats(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) along the last axis, with 0 log 0 = 0."""
    logp = np.log(np.where(p > 0, p, 1.0))
    return -(p * logp).sum(-1)


class MarkovSource:
    """An order-k Markov source with an explicit transition table (see the module docstring).

    Build a random one with ``MarkovSource(MarkovSourceConfig(...))`` or ``MarkovSource.random(...)``,
    or give the table directly with ``MarkovSource.from_table(probs)`` (shape (V,)*k + (V,), rows
    summing to 1), e.g. for hand-derived cases.
    """

    def __init__(self, cfg: MarkovSourceConfig | None = None, *, probs: np.ndarray | None = None):
        if (cfg is None) == (probs is None):
            raise ValueError("give exactly one of cfg or probs")
        if probs is None:
            probs = _random_table(cfg)
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim < 1 or len(set(probs.shape)) != 1:
            raise ValueError(f"probs must have shape (V,)*(order+1), got {probs.shape}")
        if probs.shape[0] < 2:
            raise ValueError("the source needs at least 2 symbols")
        if np.any(probs < 0) or not np.allclose(probs.sum(-1), 1.0, atol=1e-9):
            raise ValueError("every row of probs must be a probability distribution (>= 0, sum 1)")
        self.cfg = cfg
        self.probs = probs
        self.vocab_size = probs.shape[0]
        self.order = probs.ndim - 1
        self._flat = probs.reshape(-1, self.vocab_size)  # (V**k, V): row = context index
        self._cdf = np.cumsum(self._flat, axis=1)
        self._cdf[:, -1] = 1.0  # guard against float round-off at the top of the inverse CDF

    @classmethod
    def random(cls, **kwargs) -> MarkovSource:
        return cls(MarkovSourceConfig(**kwargs))

    @classmethod
    def from_table(cls, probs: np.ndarray) -> MarkovSource:
        return cls(probs=probs)

    # ------------------------------------------------------------------ exact quantities

    @cached_property
    def stationary(self) -> np.ndarray:
        """pi over the V**k contexts (flat index, most recent symbol last = fastest-varying)."""
        import scipy.sparse as sp
        import scipy.sparse.linalg as spla

        v, k = self.vocab_size, self.order
        if k == 0:
            return np.ones(1)
        n = v**k
        # context c = (x_1..x_k) with flat index sum x_i V^(k-i); after emitting y the new context is
        # (x_2..x_k, y) with index (c mod V^(k-1)) * V + y.
        src = np.repeat(np.arange(n), v)
        dst = (src % (n // v)) * v + np.tile(np.arange(v), n)
        t = sp.csr_matrix((self._flat.ravel(), (src, dst)), shape=(n, n))
        # pi (T - I) = 0  <=>  (T - I)^T pi^T = 0; replace one equation by sum(pi) = 1 (the system
        # has rank n-1 for an irreducible chain, so this makes it non-singular).
        a = (t - sp.identity(n, format="csr")).T.tolil()
        a[0, :] = np.ones(n)
        b = np.zeros(n)
        b[0] = 1.0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a singular system warns; it is reported below
                pi = spla.spsolve(a.tocsc(), b)
        except RuntimeError:  # SuperLU: the matrix is exactly singular
            pi = np.full(n, np.nan)
        if not np.all(np.isfinite(pi)) or np.any(pi < -1e-9):
            raise ValueError("the context chain has no unique stationary distribution (is it irreducible?)")
        pi = np.clip(pi, 0.0, None)
        return pi / pi.sum()

    @cached_property
    def context_entropies(self) -> np.ndarray:
        """H(P(.|c)) in nats for every context (flat index)."""
        return _entropy_nats(self._flat)

    @cached_property
    def entropy_rate(self) -> float:
        """H = sum_c pi(c) H(P(.|c)) in nats/token (exact, see the module docstring)."""
        return float(self.stationary @ self.context_entropies)

    @property
    def entropy_rate_bits(self) -> float:
        return self.entropy_rate / np.log(2)

    @cached_property
    def marginal(self) -> np.ndarray:
        """The stationary single-symbol distribution (the distribution of x_t)."""
        if self.order == 0:
            return self._flat[0].copy()
        return (self.stationary[:, None] * self._flat).sum(0)

    # ------------------------------------------------------------------ sampling and scoring

    def _start_contexts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n initial contexts drawn from pi, as (n, k) symbol arrays."""
        k, v = self.order, self.vocab_size
        if k == 0:
            return np.zeros((n, 0), dtype=np.int64)
        idx = rng.choice(v**k, size=n, p=self.stationary)
        digits = np.empty((n, k), dtype=np.int64)
        for i in range(k - 1, -1, -1):
            digits[:, i] = idx % v
            idx = idx // v
        return digits

    def sample_batch(self, n_seqs: int, length: int, seed: int) -> np.ndarray:
        """(n_seqs, length) int64: independent stationary sequences.

        Each row is a window of a stationary stream: its k-symbol prefix is drawn from pi (and
        included as the row's first k symbols when length >= k), the rest follows the chain.
        """
        if n_seqs < 1 or length < 1:
            raise ValueError(f"n_seqs and length must be >= 1, got {n_seqs}, {length}")
        rng = np.random.default_rng(seed)
        k, v = self.order, self.vocab_size
        n_ctx = v**k
        ctx_digits = self._start_contexts(rng, n_seqs)
        out = np.empty((n_seqs, max(length, k)), dtype=np.int64)
        out[:, :k] = ctx_digits
        ctx = np.zeros(n_seqs, dtype=np.int64)
        for i in range(k):
            ctx = ctx * v + ctx_digits[:, i]
        u = rng.random((n_seqs, max(length - k, 0)))
        for t in range(k, length):
            cdf = self._cdf[ctx]  # (n_seqs, V)
            y = (cdf < u[:, t - k, None]).sum(1)  # inverse CDF: first index with cdf >= u
            out[:, t] = y
            ctx = (ctx * v + y) % n_ctx if k else ctx
        return out[:, :length]

    def sample(self, n_tokens: int, seed: int) -> np.ndarray:
        """One stationary stream of n_tokens symbols (int64), deterministic in seed."""
        if n_tokens < 1:
            raise ValueError(f"n_tokens must be >= 1, got {n_tokens}")
        return self.sample_batch(1, n_tokens, seed)[0]

    def log_prob(self, tokens: np.ndarray) -> np.ndarray:
        """ln P(x_t | x_{t-k..t-1}) under the true model for every t >= k of each row.

        tokens: (T,) or (B, T) int array; returns (T - k,) or (B, T - k) float64.
        """
        x = np.asarray(tokens)
        squeeze = x.ndim == 1
        x = np.atleast_2d(x).astype(np.int64)
        if x.ndim != 2:
            raise ValueError(f"tokens must be 1-D or 2-D, got shape {np.shape(tokens)}")
        if x.size and (x.min() < 0 or x.max() >= self.vocab_size):
            raise ValueError(f"tokens must be in 0..{self.vocab_size - 1}")
        k, v = self.order, self.vocab_size
        if x.shape[1] <= k:
            raise ValueError(f"need more than order={k} tokens per row, got {x.shape[1]}")
        ctx = np.zeros((x.shape[0], x.shape[1] - k), dtype=np.int64)
        for i in range(k):
            ctx = ctx * v + x[:, i : x.shape[1] - k + i]
        lp = np.log(self._flat[ctx, x[:, k:]])
        return lp[0] if squeeze else lp

    def describe(self) -> dict:
        """A JSON-able summary (for result files and READMEs)."""
        return {
            "vocab_size": self.vocab_size,
            "order": self.order,
            "entropy_rate_nats": self.entropy_rate,
            "entropy_rate_bits": self.entropy_rate_bits,
            "marginal_entropy_nats": float(_entropy_nats(self.marginal)),
            "config": None if self.cfg is None else self.cfg.__dict__.copy(),
        }


def _random_table(cfg: MarkovSourceConfig) -> np.ndarray:
    """The sparse random transition table of cfg (see the module docstring)."""
    rng = np.random.default_rng(cfg.seed)
    v, k, s = cfg.vocab_size, cfg.order, cfg.support
    n = v**k
    table = np.zeros((n, v))
    # s distinct successors per context, drawn without replacement with weights (j+1)^-zipf
    # (Gumbel-top-s: the s largest of log w_j + Gumbel noise are such a draw)
    log_w = -cfg.zipf * np.log(np.arange(1, v + 1))
    succ = np.argsort(-(log_w + rng.gumbel(size=(n, v))), axis=1)[:, :s]
    w = rng.dirichlet(np.full(s, cfg.concentration), size=n)
    np.put_along_axis(table, succ, w, axis=1)
    table = (1.0 - cfg.eps) * table + cfg.eps / v
    return table.reshape((v,) * k + (v,))
