"""A from-scratch text tower: hashed words + character trigrams -> EmbeddingBag -> MLP -> unit vector.

Meant as a CPU-cheap stand-in for a pretrained text encoder in dual-encoder / retrieval papers
(dexml, mw-auc, ...). Text is turned into a bag of hashed feature ids once (``HashedFeaturizer``),
kept as a ragged array (``HashedCorpus``), and batches are fed to ``HashedTextTower`` as the usual
EmbeddingBag ``(ids, offsets)`` pair.

Hashing is ``blake2b`` of a namespaced feature string ("w:word", "c:#ab"), so ids are identical
across processes, machines and Python versions (Python's ``hash()`` is salted per process).

Example::

    feat = HashedFeaturizer(HashingConfig(n_buckets=2**16))
    corpus = feat.corpus(["a small red bird", "a tall tree"])
    tower = HashedTextTower(TowerConfig(n_buckets=2**16, emb_dim=128, hidden=(256,), out_dim=128))
    z = tower(*corpus.batch([0, 1]))  # (2, 128), rows have unit L2 norm
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class HashingConfig:
    """How text becomes feature ids."""

    n_buckets: int = 2**18
    """size of the hashed id space (the EmbeddingBag has this many rows)"""
    words: bool = True
    """emit one feature per (lower-cased, alphanumeric) word"""
    char_ngrams: int = 3
    """emit the character n-grams of "#word#" (0: none); makes unseen but similar words share features"""


def stable_hash(feature: str, n_buckets: int) -> int:
    """A process-independent hash of ``feature`` into ``[0, n_buckets)`` (blake2b, 8 bytes)."""
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_buckets


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric words, in order."""
    return _WORD.findall(text.lower())


class HashedFeaturizer:
    """Text -> list of hashed feature ids (words and char n-grams), deterministic across processes."""

    def __init__(self, cfg: HashingConfig = HashingConfig()):
        if cfg.n_buckets < 2:
            raise ValueError(f"n_buckets must be >= 2, got {cfg.n_buckets}")
        if cfg.char_ngrams < 0:
            raise ValueError(f"char_ngrams must be >= 0, got {cfg.char_ngrams}")
        if not cfg.words and cfg.char_ngrams == 0:
            raise ValueError("enable words and/or char_ngrams")
        self.cfg = cfg
        self._memo: dict[str, list[int]] = {}  # word -> its feature ids (texts repeat words a lot)

    def word_features(self, word: str) -> list[str]:
        """The feature strings one word contributes (namespaced so a word never collides with an n-gram)."""
        feats = [f"w:{word}"] if self.cfg.words else []
        n = self.cfg.char_ngrams
        if n:
            padded = f"#{word}#"
            feats += [f"c:{padded[i : i + n]}" for i in range(max(1, len(padded) - n + 1))]
        return feats

    def ids(self, text: str) -> list[int]:
        """Feature ids of one text (a bag: order is the token order, repeats kept)."""
        out: list[int] = []
        for w in tokenize(text):
            if w not in self._memo:
                self._memo[w] = [stable_hash(f, self.cfg.n_buckets) for f in self.word_features(w)]
            out += self._memo[w]
        return out

    def corpus(self, texts: Sequence[str]) -> HashedCorpus:
        """Featurise many texts into a ragged array. An empty text gets an empty bag (a zero embedding)."""
        bags = [self.ids(t) for t in texts]
        lengths = np.array([len(b) for b in bags], dtype=np.int64)
        flat = np.fromiter((i for b in bags for i in b), dtype=np.int64, count=int(lengths.sum()))
        return HashedCorpus(flat, lengths)


@dataclass
class HashedCorpus:
    """Ragged bags of feature ids: text ``i`` is ``flat[starts[i] : starts[i] + lengths[i]]``."""

    flat: np.ndarray
    lengths: np.ndarray
    starts: np.ndarray = field(init=False)

    def __post_init__(self):
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, index: Sequence[int] | np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, offsets)`` for ``nn.EmbeddingBag`` for the texts ``index`` (all texts when None)."""
        index = np.arange(len(self)) if index is None else np.asarray(index, dtype=np.int64)
        lens = self.lengths[index]
        offsets = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        # positions of every id of the selected texts, vectorised: start of its text + rank inside it
        pos = np.repeat(self.starts[index] - offsets, lens) + np.arange(int(lens.sum()))
        return torch.from_numpy(self.flat[pos]), torch.from_numpy(offsets)


@dataclass(frozen=True)
class TowerConfig:
    """Architecture of the text tower."""

    n_buckets: int = 2**18
    """rows of the EmbeddingBag; must equal the featurizer's n_buckets"""
    emb_dim: int = 128
    """width of the bag embedding"""
    hidden: Sequence[int] = (256,)
    """hidden widths of the MLP after the bag (ReLU)"""
    out_dim: int = 128
    """width of the output (the retrieval embedding)"""
    mode: str = "mean"
    """EmbeddingBag reduction: "mean" or "sum\""""
    normalize: bool = True
    """L2-normalise the output, so that dot products are cosines"""


class HashedTextTower(nn.Module):
    """EmbeddingBag(ids) -> [Linear -> ReLU] x len(hidden) -> Linear -> (L2 normalise)."""

    def __init__(self, cfg: TowerConfig = TowerConfig()):
        super().__init__()
        if cfg.mode not in ("mean", "sum"):
            raise ValueError(f"mode must be 'mean' or 'sum', got {cfg.mode!r}")
        if min(cfg.n_buckets, cfg.emb_dim, cfg.out_dim, *cfg.hidden) < 1:
            raise ValueError(f"sizes must be >= 1: {cfg}")
        self.cfg = cfg
        self.bag = nn.EmbeddingBag(cfg.n_buckets, cfg.emb_dim, mode=cfg.mode)
        nn.init.normal_(self.bag.weight, std=cfg.emb_dim**-0.5)
        layers: list[nn.Module] = []
        width = cfg.emb_dim
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, cfg.out_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        if ids.numel() and int(ids.max()) >= self.cfg.n_buckets:
            raise ValueError(f"feature id {int(ids.max())} >= n_buckets {self.cfg.n_buckets}")
        z = self.mlp(self.bag(ids, offsets))
        return F.normalize(z, dim=-1) if self.cfg.normalize else z
