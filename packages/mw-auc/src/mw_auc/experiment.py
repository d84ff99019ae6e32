"""One arm (loss) at one seed: train the shared hashed-text dual encoder at every temperature of the grid,
and score the validation, in-distribution test and out-of-domain test splits with all-pairs metrics.

Everything but the loss is shared across arms at a seed: the taxonomy, the splits, the tower's
initialisation, the batch order and the sampled hard negatives (one numpy generator seeded by the seed,
consumed identically by every arm). The temperature is chosen afterwards, per seed, from the validation
metrics of all arms (``select_tau``), so every arm is compared at the same temperature and the test
split never takes part in the choice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mw_auc.data import RetrievalData, RetrievalSplit, SplitConfig, build_retrieval
from mw_auc.losses import compute_loss
from mw_auc.metrics import best_threshold_f1, f1_at_threshold, relevance, score_histograms
from xentlab.data.taxonomy import TaxonomyConfig, make_taxonomy
from xentlab.metrics.ranking import mrr_at_k, pooled_auc, recall_at_k
from xentlab.models.hashed_text import (
    HashedCorpus,
    HashedFeaturizer,
    HashedTextTower,
    HashingConfig,
    TowerConfig,
)

ARMS = ("infonce", "mw_global", "mw_per_query")
HIST_BINS = np.linspace(-1.0, 1.0, 51)


@dataclass(frozen=True)
class RunConfig:
    loss: str = "mw_global"
    """infonce | mw_global | mw_per_query"""
    taus: tuple[float, ...] = (0.01, 0.03, 0.1)
    """temperature grid (scores = cos / tau); the paper trains both losses at tau = 0.01 (Sec. 5.1)"""
    # --- data (xentlab.data.taxonomy + mw_auc.data) ---
    n_domains: int = 5
    depth: int = 5
    branching: tuple[int, int] = (2, 4)
    ood_domains: int = 1
    val_frac: float = 0.1
    test_frac: float = 0.2
    max_eval_docs: int = 500
    # --- model: the shared tower encodes queries and documents (paper: one pretrained encoder) ---
    n_buckets: int = 2**16
    emb_dim: int = 128
    hidden: tuple[int, ...] = (256,)
    out_dim: int = 128
    # --- optimisation (notes: AdamW 1e-3, batch 256, 5 epochs; paper: 5 hard negatives) ---
    lr: float = 1e-3
    weight_decay: float = 0.01
    epochs: int = 5
    batch_size: int = 128
    hard_negatives: int = 1
    """hard negatives per query (random closest relatives); all of the batch's are negatives for every query"""

    def validate(self) -> None:
        if self.loss not in ARMS:
            raise ValueError(f"loss must be one of {ARMS}, got {self.loss!r}")
        if not self.taus or min(self.taus) <= 0:
            raise ValueError(f"taus must be a non-empty tuple of positive numbers, got {self.taus}")
        if self.batch_size < 2 or self.epochs < 1 or self.hard_negatives < 0:
            raise ValueError(f"need batch_size >= 2, epochs >= 1, hard_negatives >= 0: {self}")


def tau_tag(tau: float) -> str:
    """A metric-name-safe label of a temperature: 0.01 -> 'tau0010', 0.1 -> 'tau0100'."""
    return f"tau{int(round(tau * 1000)):04d}"


def tau_of_tag(tag: str) -> float:
    return int(tag.removeprefix("tau")) / 1000


def select_tag(metrics: Mapping[str, float], arms: Sequence[str] = ARMS) -> str:
    """The temperature (as its tag) with the best validation MRR@10 averaged over all arms.

    ``metrics`` holds one seed's ``"<arm>/val_mrr_<tau_tag>"`` values (the grid is read off the keys);
    only validation numbers are read. Ties go to the smallest temperature.
    """
    prefix = f"{arms[0]}/val_mrr_"
    tags = sorted(k.removeprefix(prefix) for k in metrics if k.startswith(prefix))
    if not tags:
        raise ValueError(f"no '{prefix}<tau>' metrics to choose a temperature from")
    scores = [float(np.mean([metrics[f"{arm}/val_mrr_{t}"] for arm in arms])) for t in tags]
    return tags[int(np.argmax(scores))]


@dataclass
class Featurized:
    queries: HashedCorpus
    docs: HashedCorpus
    split: RetrievalSplit


def featurize(data: RetrievalData, feat: HashedFeaturizer) -> dict[str, Featurized]:
    return {
        name: Featurized(feat.corpus(s.queries), feat.corpus(s.docs), s)
        for name, s in (
            ("train", data.train),
            ("val", data.val),
            ("id", data.test_id),
            ("ood", data.test_ood),
        )
    }


def batch_columns(
    pos_docs: np.ndarray, hard_candidates: Sequence[np.ndarray], n_hard: int, rng: np.random.Generator
) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """The batch's passages: the B positives, then n_hard random relatives of each (Sec. 4 layout).

    Returns (document ids of the columns, pos_index (B,), neg_mask (B, N)): column c is a negative for
    query i iff it is not query i's own document (a duplicate of it, e.g. from a second query of the
    same concept in the batch, is masked rather than counted as a negative).
    """
    hard = [
        rng.choice(hard_candidates[d], n_hard, replace=len(hard_candidates[d]) < n_hard) for d in pos_docs
    ]
    cols = np.concatenate([pos_docs, *hard]) if n_hard else pos_docs.copy()
    neg_mask = torch.from_numpy(cols[None, :] != pos_docs[:, None])
    return cols, torch.arange(len(pos_docs)), neg_mask


def train_tower(
    cfg: RunConfig,
    tau: float,
    data: RetrievalData,
    feats: Mapping[str, Featurized],
    seed: int,
    device: torch.device,
    log: Callable[..., None] | None = None,
) -> tuple[HashedTextTower, list[float]]:
    torch.manual_seed(seed)  # the same initial tower for every arm and temperature of a seed
    tower = HashedTextTower(
        TowerConfig(n_buckets=cfg.n_buckets, emb_dim=cfg.emb_dim, hidden=cfg.hidden, out_dim=cfg.out_dim)
    ).to(device)
    opt = torch.optim.AdamW(tower.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng([seed, 0xBA7C])  # batch order + hard negatives, identical across arms
    tr = feats["train"]
    n = len(tr.split)
    steps_per_epoch = n // cfg.batch_size  # drop the ragged last batch (every batch has B queries)
    curve = []
    for epoch in range(cfg.epochs):
        perm = rng.permutation(n)
        total = 0.0
        for b in range(steps_per_epoch):
            qi = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            pos_docs = tr.split.query_doc[qi]
            cols, pos_index, neg_mask = batch_columns(pos_docs, data.hard_candidates, cfg.hard_negatives, rng)
            q = tower(*(t.to(device) for t in tr.queries.batch(qi)))
            d = tower(*(t.to(device) for t in tr.docs.batch(cols)))
            scores = q @ d.T / tau  # cos / tau: the scaled similarity both losses see
            loss = compute_loss(cfg.loss, scores, pos_index.to(device), neg_mask.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        curve.append(total / steps_per_epoch)
        if log is not None:
            log(step=(epoch + 1) * steps_per_epoch, epoch=epoch, tau=tau, loss=curve[-1])
    return tower, curve


@torch.no_grad()
def cosine_scores(tower: HashedTextTower, f: Featurized, device: torch.device) -> np.ndarray:
    tower.eval()
    q = tower(*(t.to(device) for t in f.queries.batch()))
    d = tower(*(t.to(device) for t in f.docs.batch()))
    tower.train()
    return (q @ d.T).double().cpu().numpy()


def evaluate(
    tower: HashedTextTower, feats: Mapping[str, Featurized], device: torch.device
) -> tuple[dict, dict]:
    """All-pairs metrics on val / test-ID / test-OOD; the F1 threshold chosen on val is also applied to test."""
    out: dict[str, float] = {}
    hists: dict[str, dict] = {}
    s_val = cosine_scores(tower, feats["val"], device)
    rel_val = feats["val"].split.query_doc
    f1_val, thr = best_threshold_f1(s_val, rel_val)
    _, y_val = relevance(s_val, rel_val)
    out |= {"val_mrr": mrr_at_k(s_val, y_val, 10), "val_auc": pooled_auc(s_val, y_val), "val_f1": f1_val}
    for name in ("id", "ood"):
        s = cosine_scores(tower, feats[name], device)
        rel = feats[name].split.query_doc
        _, y = relevance(s, rel)
        out |= {
            # the paper's pooled AUC (Sec. 5.1) over every (query, document) pair of the split
            f"auc_{name}": pooled_auc(s, y),
            f"mrr10_{name}": mrr_at_k(s, y, 10),
            f"r10_{name}": recall_at_k(s, y, 10),
            f"f1_{name}": best_threshold_f1(s, rel)[0],
            f"f1valthr_{name}": f1_at_threshold(s, rel, thr),
        }
        hists[name] = score_histograms(s, rel, HIST_BINS)
    return out, hists


def run(
    cfg: RunConfig,
    seed: int,
    device: torch.device | str = "cpu",
    log: Callable[..., None] | None = None,
) -> dict:
    """Metrics ``<name>_<tau_tag>`` for every temperature of the grid, plus split sizes and artifacts."""
    cfg.validate()
    device = torch.device(device)
    tax = make_taxonomy(
        TaxonomyConfig(n_domains=cfg.n_domains, depth=cfg.depth, branching=cfg.branching), seed
    )
    split_cfg = SplitConfig(cfg.ood_domains, cfg.val_frac, cfg.test_frac, cfg.max_eval_docs)
    data = build_retrieval(tax, split_cfg, seed)
    feats = featurize(data, HashedFeaturizer(HashingConfig(n_buckets=cfg.n_buckets)))
    out: dict = {
        "n_train_queries": len(data.train),
        "n_val_docs": len(data.val.docs),
        "n_id_docs": len(data.test_id.docs),
        "n_ood_docs": len(data.test_ood.docs),
    }
    hists, curves = {}, {}
    for tau in cfg.taus:
        tower, curve = train_tower(cfg, tau, data, feats, seed, device, log)
        metrics, h = evaluate(tower, feats, device)
        tag = tau_tag(tau)
        out |= {f"{k}_{tag}": v for k, v in metrics.items()}
        hists[tag], curves[tag] = h, curve
    out["hist_bins"] = HIST_BINS.round(4).tolist()
    out["hists"] = hists
    out["loss_curves"] = curves
    return out
