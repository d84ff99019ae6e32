"""Definition retrieval on the procedural taxonomy (xentlab.data.taxonomy), the notes' WordNet design.

query = one of a concept's example sentences, relevant document = that concept's gloss, corpus = every
gloss of the split. The last ``ood_domains`` top-level branches are held out entirely (out-of-domain
test: none of their made-up words is ever trained on); the concepts of the other branches are split at
random into train / validation / in-distribution test, so every evaluation gloss is unseen.

Hard negatives (the paper trains with 5 mined hard negatives per query, Sec. 5.1): a gloss of a random
*closest relative* of the concept inside the train split -- a sibling when one exists, else a cousin, and
so on up the tree. Relatives share their ancestors' words, so they are the natural hard negatives here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xentlab.data.taxonomy import Taxonomy


@dataclass(frozen=True)
class SplitConfig:
    """How the taxonomy's concepts become train / val / test-ID / test-OOD retrieval splits."""

    ood_domains: int = 1
    """the last this-many top-level branches form the OOD test split"""
    val_frac: float = 0.1
    """fraction of the in-distribution concepts held out for validation (temperature choice)"""
    test_frac: float = 0.2
    """fraction of the in-distribution concepts held out for the in-distribution test"""
    max_eval_docs: int = 500
    """evaluation corpora larger than this are subsampled (by concept): keeps all-pairs scoring cheap and
    makes the exact all-pairs AUC equal the paper's top-500-negatives protocol"""

    def validate(self, n_domains: int) -> None:
        if not 1 <= self.ood_domains < n_domains:
            raise ValueError(f"need 1 <= ood_domains < n_domains={n_domains}, got {self.ood_domains}")
        if not (0 < self.val_frac and 0 < self.test_frac and self.val_frac + self.test_frac < 1):
            raise ValueError(f"need val_frac, test_frac > 0 and val_frac + test_frac < 1: {self}")
        if self.max_eval_docs < 2:
            raise ValueError(f"max_eval_docs must be >= 2, got {self.max_eval_docs}")


@dataclass
class RetrievalSplit:
    """Queries, the corpus, and which document each query is about."""

    queries: list[str]
    query_doc: np.ndarray
    """(n_queries,) index into ``docs`` of each query's relevant document"""
    docs: list[str]
    doc_concept: np.ndarray
    """(n_docs,) taxonomy concept id of each document"""

    def __len__(self) -> int:
        return len(self.queries)


@dataclass
class RetrievalData:
    train: RetrievalSplit
    val: RetrievalSplit
    test_id: RetrievalSplit
    test_ood: RetrievalSplit
    hard_candidates: list[np.ndarray]
    """per train document: indices (into ``train.docs``) of its closest relatives in the train split"""


def _split(tax: Taxonomy, concepts: list[int]) -> RetrievalSplit:
    docs = [tax.concepts[c].gloss for c in concepts]
    queries, query_doc = [], []
    for j, c in enumerate(concepts):
        for e in tax.concepts[c].examples:
            queries.append(e)
            query_doc.append(j)
    return RetrievalSplit(
        queries, np.array(query_doc, dtype=np.int64), docs, np.array(concepts, dtype=np.int64)
    )


def closest_relatives(tax: Taxonomy, concepts: list[int]) -> list[np.ndarray]:
    """For each concept of ``concepts``: the positions (in ``concepts``) of the other concepts under its
    nearest ancestor that has any (siblings first, then cousins, ...); all others for a lone root."""
    pos = {c: j for j, c in enumerate(concepts)}
    subtree: dict[int, list[int]] = {}
    for c in concepts:
        for a in (*tax.concepts[c].ancestors, c):
            subtree.setdefault(a, []).append(pos[c])
    everyone = np.arange(len(concepts))
    out = []
    for c in concepts:
        cand = None
        for a in reversed(tax.concepts[c].ancestors):  # parent first, then up to the root
            members = [j for j in subtree.get(a, []) if j != pos[c]]
            if members:
                cand = np.array(members, dtype=np.int64)
                break
        out.append(cand if cand is not None else everyone[everyone != pos[c]])
    return out


def build_retrieval(tax: Taxonomy, cfg: SplitConfig, seed: int) -> RetrievalData:
    """Deterministic in ``(tax, cfg, seed)``."""
    n_domains = len(tax.roots)
    cfg.validate(n_domains)
    rng = np.random.default_rng([seed, 0x3A0C])
    ood = set(range(n_domains - cfg.ood_domains, n_domains))
    id_concepts = np.array([c.id for c in tax.concepts if c.domain not in ood], dtype=np.int64)
    ood_concepts = np.array([c.id for c in tax.concepts if c.domain in ood], dtype=np.int64)
    perm = id_concepts[rng.permutation(len(id_concepts))]
    n_val = int(round(cfg.val_frac * len(perm)))
    n_test = int(round(cfg.test_frac * len(perm)))
    val, test, train = perm[:n_val], perm[n_val : n_val + n_test], perm[n_val + n_test :]

    def cap(ids: np.ndarray) -> list[int]:
        if len(ids) > cfg.max_eval_docs:
            ids = rng.choice(ids, cfg.max_eval_docs, replace=False)
        return sorted(int(i) for i in ids)

    train_ids = sorted(int(i) for i in train)
    return RetrievalData(
        train=_split(tax, train_ids),
        val=_split(tax, cap(val)),
        test_id=_split(tax, cap(test)),
        test_ood=_split(tax, cap(ood_concepts)),
        hard_candidates=closest_relatives(tax, train_ids),
    )
