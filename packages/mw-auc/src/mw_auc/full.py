"""--scale full: a pretrained sentence encoder (MiniLM / XLM-R in the paper) fine-tuned as a shared dual
encoder with InfoNCE (Eq. 4) or the MW loss (Eq. 3) at tau = 0.01, evaluated on BEIR-layout datasets with
the paper's pooled AUC protocol (Sec. 5.1), MRR@10, nDCG@10 and Recall@10.

Inputs (config key or environment variable; nothing is downloaded, see ``xentlab.repro.local_data``):

* ``model`` / ``$MW_AUC_MODEL``: a local Hugging Face encoder directory with its tokenizer
  (e.g. ``sentence-transformers/all-MiniLM-L6-v2`` or ``xlm-roberta-base`` saved with ``save_pretrained``).
* ``train`` / ``$MW_AUC_TRAIN``: a jsonl(.gz) file, one training row per line:
  ``{"query": str, "positive": str, "negatives": [str, ...]}`` (``anchor`` / ``pos`` / ``neg`` /
  ``negative`` / ``hard_negatives`` are accepted as aliases; a single negative may be a string).
  The first ``hard_negatives`` (5 in the paper) negatives of a row are used.
* ``id_data`` / ``$MW_AUC_ID_DATA`` (optional): one BEIR-layout folder, the in-domain test (Table 1).
* ``beir`` / ``$MW_AUC_BEIR`` (optional): a folder of BEIR-layout dataset folders, the zero-shot test
  (Table 2); ``beir_datasets`` picks some by name (default: every subfolder with a ``corpus.jsonl``).
  At least one of ``id_data`` and ``beir`` must be set.

BEIR layout (as ``beir.datasets.data_loader.GenericDataLoader`` reads it): ``corpus.jsonl``
(``{"_id", "title", "text"}``), ``queries.jsonl`` (``{"_id", "text"}``) and ``qrels/test.tsv``
(header, then ``query-id<TAB>corpus-id<TAB>score``). Documents are encoded as ``title + " " + text``.

Training (Sec. 5.1): batches of ``batch_size`` rows (64 for MiniLM, 32 base, 16 large); the columns are
the B positives then every row's hard negatives, all of them negatives for every query (Sec. 4), except a
column whose text is the query's own positive (masked); scores = cos / tau; AdamW with 500 linear warm-up
steps then linear decay; at most ``epochs`` (20) epochs, early stopping when the loss on a held-out part
of the training file stops improving (``patience`` epochs), keeping the best epoch's weights.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mw_auc.experiment import HIST_BINS, tau_tag
from mw_auc.losses import compute_loss
from mw_auc.metrics import best_threshold_f1, relevance
from xentlab.metrics.ranking import mrr_at_k, ndcg_at_k, pooled_auc, recall_at_k
from xentlab.repro.local_data import MissingLocalData, local_path
from xentlab.train.early_stopping import EarlyStopping

ENV_MODEL, ENV_TRAIN, ENV_ID, ENV_BEIR = "MW_AUC_MODEL", "MW_AUC_TRAIN", "MW_AUC_ID_DATA", "MW_AUC_BEIR"
BEIR_LAYOUT = "corpus.jsonl ({_id, title, text}), queries.jsonl ({_id, text}), qrels/test.tsv"
TRAIN_LAYOUT = 'jsonl rows {"query": str, "positive": str, "negatives": [str, ...]}'


# --------------------------------------------------------------------------- data


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _first(row: dict, keys: tuple[str, ...]):
    return next((row[k] for k in keys if k in row), None)


def load_training_rows(path: Path, hard_negatives: int) -> list[tuple[str, str, list[str]]]:
    """(query, positive, first ``hard_negatives`` negatives) per row."""
    rows = []
    for i, r in enumerate(read_jsonl(path)):
        q, p = _first(r, ("query", "anchor")), _first(r, ("positive", "pos"))
        negs = _first(r, ("negatives", "hard_negatives", "neg", "negative"))
        negs = [negs] if isinstance(negs, str) else list(negs or [])
        if not isinstance(q, str) or not isinstance(p, str):
            raise ValueError(f"{path} line {i + 1}: need {TRAIN_LAYOUT}")
        rows.append((q, p, negs[:hard_negatives]))
    if len(rows) < 4:
        raise ValueError(f"{path}: need at least 4 training rows, got {len(rows)}")
    return rows


@dataclass
class BeirData:
    name: str
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: list[dict[int, int]]  # per query: document index -> graded relevance (> 0)


def load_beir(root: Path, split: str = "test") -> BeirData:
    root = Path(root)
    files = [root / "corpus.jsonl", root / "queries.jsonl", root / "qrels" / f"{split}.tsv"]
    for f in files:
        if not f.is_file():
            raise MissingLocalData(f"{f} not found; a BEIR dataset folder holds {BEIR_LAYOUT}")
    corpus = read_jsonl(files[0])
    doc_ids = [str(d["_id"]) for d in corpus]
    doc_texts = [(d.get("title", "") + " " + d["text"]).strip() for d in corpus]
    index = {d: i for i, d in enumerate(doc_ids)}
    queries = {str(q["_id"]): q["text"] for q in read_jsonl(files[1])}
    qrels: dict[str, dict[int, int]] = {}
    for n, line in enumerate(files[2].read_text(encoding="utf-8").splitlines()):
        parts = line.strip().split("\t")
        if n == 0 and not parts[-1].lstrip("-").isdigit():
            continue  # the header line
        if len(parts) != 3:
            raise ValueError(f"{files[2]} line {n + 1}: need query-id, corpus-id, score")
        qid, did, score = parts[0], parts[1], int(parts[2])
        if score > 0 and did in index and qid in queries:
            qrels.setdefault(qid, {})[index[did]] = score
    qids = sorted(qrels)
    if not qids:
        raise ValueError(f"{root}: no query of qrels/{split}.tsv has a relevant document in the corpus")
    return BeirData(root.name, doc_ids, doc_texts, qids, [queries[q] for q in qids], [qrels[q] for q in qids])


def beir_folders(root: Path, names: list[str] | None) -> list[Path]:
    if (root / "corpus.jsonl").is_file():
        return [root]
    found = sorted(p for p in root.iterdir() if (p / "corpus.jsonl").is_file())
    if names:
        by_name = {p.name: p for p in found}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise MissingLocalData(
                f"BEIR datasets {missing} not under {root} (${ENV_BEIR}); each holds {BEIR_LAYOUT}"
            )
        found = [by_name[n] for n in names]
    if not found:
        raise MissingLocalData(f"no BEIR dataset folder under {root} (${ENV_BEIR}); each holds {BEIR_LAYOUT}")
    return found


# --------------------------------------------------------------------------- encoder


class Encoder:
    """A shared HF encoder: pooled (mean over tokens as sentence-transformers' MiniLM, or CLS) and L2
    normalised, so q . d is the cosine similarity."""

    def __init__(self, model_dir: Path, cfg: dict, device: torch.device):
        from transformers import AutoModel, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).to(device)
        self.cfg, self.device = cfg, device
        if cfg["pooling"] not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {cfg['pooling']!r}")

    def __call__(self, texts: list[str]) -> torch.Tensor:
        enc = self.tok(
            texts, padding=True, truncation=True, max_length=self.cfg["max_len"], return_tensors="pt"
        )
        enc = {k: v.to(self.device) for k, v in enc.items()}
        amp = self.cfg["amp"] if self.device.type == "cuda" else None
        with torch.autocast(self.device.type, dtype=getattr(torch, amp) if amp else None, enabled=bool(amp)):
            h = self.model(**enc).last_hidden_state
        h = h.float()
        if self.cfg["pooling"] == "cls":
            pooled = h[:, 0]
        else:
            m = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (h * m).sum(1) / m.sum(1).clamp_min(1e-9)
        return F.normalize(pooled, dim=-1)

    @torch.no_grad()
    def embed(self, texts: list[str]) -> torch.Tensor:
        self.model.eval()
        bs = self.cfg["eval_batch"]
        out = torch.cat([self(texts[i : i + bs]) for i in range(0, len(texts), bs)])
        self.model.train()
        return out


def batch_columns(rows: list[tuple[str, str, list[str]]]) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Columns: the B positives, then each row's hard negatives (Sec. 4). Column c is a negative for query
    i unless its text is query i's positive (a duplicate of it is masked, as at cpu scale)."""
    cols = [p for _, p, _ in rows] + [n for _, _, negs in rows for n in negs]
    ids: dict[str, int] = {}
    col_ids = torch.tensor([ids.setdefault(t, len(ids)) for t in cols])
    pos_ids = col_ids[: len(rows)]
    return cols, torch.arange(len(rows)), col_ids[None, :] != pos_ids[:, None]


def batch_loss(enc: Encoder, rows, arm: str, tau: float) -> torch.Tensor:
    cols, pos_index, neg_mask = batch_columns(rows)
    q = enc([r[0] for r in rows])
    d = enc(cols)
    scores = q @ d.T / tau  # cos / tau, as at cpu scale
    return compute_loss(arm, scores, pos_index.to(q.device), neg_mask.to(q.device))


# --------------------------------------------------------------------------- metrics


def pooled_f1(pos: np.ndarray, neg: np.ndarray, threshold: float | None = None) -> tuple[float, float]:
    """(F1, threshold) of "relevant iff s >= t" over the pool: the best t (as ``best_threshold_f1``: a cut
    after each distinct score) or the given one (a threshold chosen on validation)."""
    s = np.concatenate([pos, neg]).astype(np.float64)
    y = np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)]
    if threshold is not None:
        tp, fp = int((s[y] >= threshold).sum()), int((s[~y] >= threshold).sum())
        return 2 * tp / (2 * tp + fp + (len(pos) - tp)), float(threshold)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp, fp = np.cumsum(y), np.cumsum(~y)
    last = np.r_[s[1:] != s[:-1], True]
    f1 = 2 * tp[last] / (2 * tp[last] + fp[last] + (len(pos) - tp[last]))
    j = int(np.argmax(f1))
    return float(f1[j]), float(s[last][j])


def pool_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Pr(s+ > s-) over every (positive, negative) pair of the pool, ties 1/2: ``pooled_auc`` (scikit-learn's
    ROC AUC) of the concatenated pool, the same statistic as at cpu scale."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    return pooled_auc(np.r_[pos, neg], np.r_[np.ones(pos.size), np.zeros(neg.size)])


def rank_metrics(
    candidates: list[tuple[list[int], list[float]]], qrels: list[dict[int, int]], k: int = 10
) -> dict[str, float]:
    """Mean over queries of MRR@k, nDCG@k (graded gains rel / log2(rank + 1), as pytrec_eval in BEIR) and
    Recall@k, by ``xentlab.metrics.ranking`` on a (query x candidate) score / gain matrix.

    ``candidates[j]`` = (document indices, cosine scores) of query j: its top-scoring documents (at least
    its top k) plus every relevant document, so the top k is ranked exactly as over the whole corpus and
    every relevant gain is present (IDCG, Recall's |P|). Rows are padded with score -inf and gain 0."""
    width = max(k, max(len(d) for d, _ in candidates))
    scores = np.full((len(candidates), width), -np.inf)
    gains = np.zeros((len(candidates), width))
    for i, ((docs, vals), qrel) in enumerate(zip(candidates, qrels)):
        scores[i, : len(vals)] = vals
        gains[i, : len(docs)] = [qrel.get(d, 0) for d in docs]
    return {"mrr10": mrr_at_k(scores, gains, k), "ndcg10": ndcg_at_k(scores, gains, k),
            "r10": recall_at_k(scores, gains, k)}  # fmt: skip


@torch.no_grad()
def evaluate_beir(
    enc: Encoder, data: BeirData, cfg: dict, val_threshold: float | None = None
) -> tuple[dict[str, float], dict]:
    """Sec. 5.1's AUC protocol (positives of every query + its top ``n_neg`` non-relevant passages, pooled)
    and the mean MRR@10 / nDCG@10 / Recall@10; BEIR drops a document whose id equals the query id."""
    docs = enc.embed(data.doc_texts)
    queries = enc.embed(data.query_texts)
    doc_index = {d: i for i, d in enumerate(data.doc_ids)} if cfg["ignore_identical_ids"] else {}
    pos_scores, neg_scores, candidates = [], [], []
    n_neg, qb = cfg["n_neg"], cfg["query_chunk"]
    for start in range(0, len(queries), qb):
        s = queries[start : start + qb] @ docs.T  # (chunk, n_docs) cosine
        qrels = data.qrels[start : start + qb]
        for j, qrel in enumerate(qrels):
            same = doc_index.get(data.query_ids[start + j])
            if same is not None and same not in qrel:
                s[j, same] = -math.inf
            pos_scores.extend(s[j, torch.tensor(list(qrel), device=s.device)].tolist())
        k = min(s.shape[1], n_neg + max(len(q) for q in qrels) + 1)
        values, indices = (t.cpu() for t in torch.topk(s, k, dim=1))
        for j, qrel in enumerate(qrels):
            top = [(d, v) for d, v in zip(indices[j].tolist(), values[j].tolist()) if math.isfinite(v)]
            in_top = {d for d, _ in top}
            missing = [d for d in qrel if d not in in_top]  # relevant documents below the top k
            top += [(d, float(s[j, d])) for d in missing]
            candidates.append(([d for d, _ in top], [v for _, v in top]))
            neg_scores.extend(
                [
                    v
                    for d, v in zip(indices[j].tolist(), values[j].tolist())
                    if d not in qrel and math.isfinite(v)
                ][:n_neg]
            )
    pos, neg = np.array(pos_scores), np.array(neg_scores)
    out = {"auc": pool_auc(pos, neg), **rank_metrics(candidates, data.qrels)}
    # thresholdability over the same pool: the best global threshold, and the one chosen on validation
    out["f1"] = pooled_f1(pos, neg)[0]
    if val_threshold is not None:
        out["f1valthr"] = pooled_f1(pos, neg, val_threshold)[0]
    return out, {"pos": pos, "neg": neg}


def _hist(pool: dict) -> dict[str, list[float]]:
    pos, _ = np.histogram(pool["pos"], bins=HIST_BINS, density=True)
    neg, _ = np.histogram(pool["neg"], bins=HIST_BINS, density=True)
    return {"pos": pos.round(5).tolist(), "neg": neg.round(5).tolist()}


@torch.no_grad()
def validation(enc: Encoder, rows, cfg: dict, tau: float) -> dict[str, float]:
    """Held-out training rows: the arm's own loss (for early stopping) and MRR@10 of each query's positive
    among every distinct passage of the held-out rows (``xentlab.metrics.ranking.mrr_at_k``), and the best
    global F1 threshold there (``best_threshold_f1``), applied to the test pools as at cpu scale."""
    enc.model.eval()
    bs = cfg["batch_size"]
    losses = [batch_loss(enc, rows[i : i + bs], cfg["loss"], tau).item() for i in range(0, len(rows), bs)
              if len(rows[i : i + bs]) > 1]  # fmt: skip
    texts = list(dict.fromkeys([p for _, p, _ in rows] + [n for _, _, negs in rows for n in negs]))
    index = {t: i for i, t in enumerate(texts)}
    scores = (enc.embed([q for q, _, _ in rows]) @ enc.embed(texts).T).double().cpu().numpy()
    rel = np.array([index[p] for _, p, _ in rows])
    enc.model.train()
    f1, thr = best_threshold_f1(scores, rel)
    mrr = mrr_at_k(*relevance(scores, rel), 10)
    return {"loss": float(np.mean(losses)), "mrr": mrr, "f1": f1, "threshold": thr}


# --------------------------------------------------------------------------- one arm, one seed


def _paths(cfg: dict) -> dict[str, Any]:
    p = {
        "model": local_path(
            cfg, "model", ENV_MODEL, needs="a local HF encoder directory (model + tokenizer)"
        ),
        "train": local_path(cfg, "train", ENV_TRAIN, needs=f"a training file of {TRAIN_LAYOUT}"),
        "id": local_path(cfg, "id_data", ENV_ID, needs=f"a BEIR folder ({BEIR_LAYOUT})", required=False),
        "beir": local_path(cfg, "beir", ENV_BEIR, needs="a folder of BEIR dataset folders", required=False),
    }
    if p["id"] is None and p["beir"] is None:
        raise MissingLocalData(
            f"--scale full needs a test set: set {ENV_ID} (one BEIR folder, in-domain) and/or {ENV_BEIR} "
            f"(a folder of BEIR folders, zero-shot); each holds {BEIR_LAYOUT}. Nothing is downloaded."
        )
    return p


def train(enc: Encoder, rows, val_rows, cfg: dict, tau: float, seed: int, log=None) -> tuple[list, dict]:
    from transformers import get_linear_schedule_with_warmup

    bs = cfg["batch_size"]
    steps_per_epoch = len(rows) // bs  # full batches only: every batch has B queries
    opt = torch.optim.AdamW(enc.model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = get_linear_schedule_with_warmup(opt, cfg["warmup_steps"], steps_per_epoch * cfg["epochs"])
    gen = torch.Generator().manual_seed(seed)  # batch order: identical across arms at a seed
    stopper = EarlyStopping(cfg["patience"], cfg["min_delta"])  # on the held-out loss
    best_state, curve = None, []
    val: dict[str, float] = {}
    enc.model.train()
    for epoch in range(cfg["epochs"]):
        perm = torch.randperm(len(rows), generator=gen).tolist()
        total = 0.0
        for b in range(steps_per_epoch):
            loss = batch_loss(enc, [rows[i] for i in perm[b * bs : (b + 1) * bs]], cfg["loss"], tau)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        curve.append(total / steps_per_epoch)
        v = validation(enc, val_rows, cfg, tau)
        if log:
            log(step=(epoch + 1) * steps_per_epoch, epoch=epoch, tau=tau, loss=curve[-1], val_loss=v["loss"],
                val_mrr=v["mrr"])  # fmt: skip
        stop = stopper.update(v["loss"])
        if stopper.improved:
            val = {**v, "epoch": epoch + 1}
            best_state = {k: t.detach().to("cpu", copy=True) for k, t in enc.model.state_dict().items()}
        if stop:
            break
    if best_state is None:
        raise FloatingPointError(f"the held-out loss is not finite ({v['loss']}); lower lr or check the data")
    enc.model.load_state_dict(best_state)
    return curve, val


def run_full(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """One loss (``cfg["loss"]``) at one seed, trained at each temperature of ``cfg["taus"]``."""
    paths = _paths(cfg)
    rows = load_training_rows(paths["train"], cfg["hard_negatives"])
    perm = np.random.default_rng([seed, 0xE7A1]).permutation(len(rows))
    n_val = max(2, min(cfg["val_rows"], int(cfg["val_frac"] * len(rows))))
    val_rows, train_rows = [rows[i] for i in perm[:n_val]], [rows[i] for i in perm[n_val:]]
    if len(train_rows) < cfg["batch_size"]:
        raise ValueError(f"{len(train_rows)} training rows are fewer than one batch of {cfg['batch_size']}")
    tests = ([("id", load_beir(paths["id"]))] if paths["id"] else []) + [
        ("ood", load_beir(p))
        for p in (beir_folders(paths["beir"], cfg["beir_datasets"]) if paths["beir"] else [])
    ]
    out: dict[str, Any] = {"n_train_rows": len(train_rows), "n_val_rows": n_val}
    hists, curves = {}, {}
    for tau in cfg["taus"]:
        tag = tau_tag(tau)
        torch.manual_seed(seed)  # the same initial weights and dropout stream for every arm
        enc = Encoder(paths["model"], cfg, ctx.device)
        curve, val = train(enc, train_rows, val_rows, cfg, tau, seed, ctx.log)
        out |= {
            f"val_mrr_{tag}": val["mrr"],
            f"val_loss_{tag}": val["loss"],
            f"best_epoch_{tag}": val["epoch"],
        }
        pools: dict[str, list] = {"id": [], "ood": []}
        per_split: dict[str, list[dict]] = {"id": [], "ood": []}
        for split, data in tests:
            metrics, pool = evaluate_beir(enc, data, cfg, val["threshold"])
            per_split[split].append(metrics)
            pools[split].append(pool)
            if split == "ood":
                name = re.sub(r"\W", "_", data.name.lower())
                out |= {f"beir_{name}_{m}_{tag}": v for m, v in metrics.items()}
        for split, ms in per_split.items():  # Table 2's "Average": the mean over datasets
            if ms:
                out |= {f"{m}_{split}_{tag}": float(np.mean([x[m] for x in ms])) for m in ms[0]}
        hists[tag] = {
            s: _hist({k: np.concatenate([p[k] for p in pl]) for k in ("pos", "neg")})
            for s, pl in pools.items()
            if pl
        }
        curves[tag] = curve
        del enc
    out["hist_bins"] = HIST_BINS.round(4).tolist()
    out["hists"] = hists
    out["loss_curves"] = curves
    return out
