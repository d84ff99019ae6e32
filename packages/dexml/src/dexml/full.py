"""--scale full: EURLex-4K with a shared DistilBERT dual encoder, as the official DEXML code trains it.

Inputs (config key or environment variable; nothing is downloaded, see ``xentlab.repro.local_data``):

* ``data_root`` / ``$DEXML_DATA_ROOT``: one dataset folder in the layout the official code reads
  (``Datasets/EURLex-4K/`` in nilesh2797/DEXML, texts from the Extreme Classification Repository):
  ``raw/trn_X.txt`` and ``raw/tst_X.txt`` (one document per line), ``raw/Y.txt`` (one label text per line,
  line j = label j), and the label matrices ``Y.trn.npz`` / ``Y.tst.npz`` (``scipy.sparse.save_npz`` of a
  CSR matrix, documents x labels) or, instead, the repository's sparse text files ``trn_X_Y.txt`` /
  ``tst_X_Y.txt`` (header ``<rows> <labels>``, then ``label:value`` pairs per line). An optional
  ``filter_labels_test.txt`` (``<row> <label>`` per line) removes those pairs from the test predictions,
  as the official evaluator does.
* ``model`` / ``$DEXML_MODEL``: a local Hugging Face directory with DistilBERT and its tokenizer
  (``distilbert-base-uncased`` saved with ``save_pretrained``).

What the official ``train.py`` + ``configs/dual-encoder.yaml`` + ``configs/EURLex-4K/*`` do, and we with it:
one encoder for documents and labels, CLS pooling (``tf_pooler: cls``), L2-normalised embeddings,
s = cos / tau with tau = 0.05, every label a negative at every step (``dist-de-all``), max length 128 for
documents and labels, batch 512, AdamW lr 5e-5 with weight decay 0.01 except biases and LayerNorms,
linear warm-up over 10% of the steps then linear decay to 0, 100 epochs, encoder dropout as configured in
the model (train mode) and 0 on the embeddings. The all-label encoding is made to fit with gradient
caching (``gc_bsz``): embed every chunk without a graph, take the loss gradient with respect to the
embeddings, then re-encode each chunk with the same dropout masks and backpropagate that gradient.
P@1, P@5 and nDCG@5 on the test split after the last epoch (the official run tracks the best test nDCG@5
over epochs; we do not select on test).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dexml.losses import compute_loss
from xentlab.metrics.ranking import ndcg_at_k, precision_at_k
from xentlab.repro.local_data import MissingLocalData, local_path

ENV_DATA = "DEXML_DATA_ROOT"
ENV_MODEL = "DEXML_MODEL"
XC_LAYOUT = (
    "raw/{trn_X.txt, tst_X.txt, Y.txt} (one text per line) and Y.{trn,tst}.npz (scipy CSR, docs x labels) "
    "or {trn,tst}_X_Y.txt (XC sparse text); optional filter_labels_test.txt"
)


# --------------------------------------------------------------------------- data


@dataclass
class XCData:
    train_texts: list[str]
    train_targets: torch.Tensor  # (N_train, L) bool
    test_texts: list[str]
    test_targets: torch.Tensor  # (N_test, L) bool
    label_texts: list[str]
    test_filter: np.ndarray  # (K, 2) (row, label) pairs removed from the test predictions


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise MissingLocalData(f"{path} not found ({ENV_DATA}); expected {XC_LAYOUT}")
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f]  # the official loader strips every line, keeps empty ones


def read_xc_sparse(path: Path) -> torch.Tensor:
    """The Extreme Classification Repository sparse text format: ``<rows> <cols>`` then per row
    space-separated ``col:value`` pairs (an empty line = no labels); returned as a dense bool (value > 0)."""
    lines = path.read_text().splitlines()
    try:
        n, L = (int(v) for v in lines[0].split())
    except (IndexError, ValueError):
        raise ValueError(f"{path}: the first line must be '<rows> <cols>'") from None
    if len(lines) - 1 < n:
        lines += [""] * (n + 1 - len(lines))
    y = torch.zeros(n, L, dtype=torch.bool)
    for i, line in enumerate(lines[1 : n + 1]):
        for item in line.split():
            col, _, val = item.partition(":")
            if float(val or 1) > 0:
                y[i, int(col)] = True
    return y


def _labels(root: Path, split: str) -> torch.Tensor:
    npz, txt = root / f"Y.{split}.npz", root / f"{split}_X_Y.txt"
    if npz.is_file():
        import scipy.sparse as sp

        m = sp.load_npz(npz).tocsr()
        return torch.from_numpy((m > 0).toarray())
    if txt.is_file():
        return read_xc_sparse(txt)
    raise MissingLocalData(
        f"neither {npz.name} nor {txt.name} under {root} ({ENV_DATA}); expected {XC_LAYOUT}"
    )


def load_xc(root: Path) -> XCData:
    """The raw-text XC dataset under ``root``; training documents without any label are dropped (no
    positive to train on), test documents without labels are skipped by the metrics."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MissingLocalData(f"{ENV_DATA}={root} is not a folder; expected {XC_LAYOUT}")
    trn_x, tst_x, label_texts = (_lines(root / "raw" / f) for f in ("trn_X.txt", "tst_X.txt", "Y.txt"))
    trn_y, tst_y = _labels(root, "trn"), _labels(root, "tst")
    for name, texts, y in (("trn", trn_x, trn_y), ("tst", tst_x, tst_y)):
        if y.shape != (len(texts), len(label_texts)):
            raise ValueError(
                f"{name} labels are {tuple(y.shape)} but raw/{name}_X.txt has {len(texts)} lines and "
                f"raw/Y.txt {len(label_texts)} labels"
            )
    keep = trn_y.any(1)
    filt = root / "filter_labels_test.txt"
    test_filter = np.loadtxt(filt, dtype=np.int64, ndmin=2) if filt.is_file() else np.zeros((0, 2), np.int64)
    return XCData(
        [t for t, k in zip(trn_x, keep.tolist()) if k], trn_y[keep], tst_x, tst_y, label_texts, test_filter
    )


# --------------------------------------------------------------------------- encoder


@dataclass
class Tokens:
    """Pre-tokenised texts, padded to max_len; batches are trimmed to their longest row."""

    ids: torch.Tensor
    mask: torch.Tensor

    def batch(self, idx, device) -> dict[str, torch.Tensor]:
        ids, mask = self.ids[idx], self.mask[idx]
        n = max(int(mask.sum(1).max()), 1)
        return {"input_ids": ids[:, :n].to(device), "attention_mask": mask[:, :n].to(device)}

    def __len__(self) -> int:
        return len(self.ids)


def tokenize(tok, texts: list[str], max_len: int) -> Tokens:
    enc = tok(texts, max_length=max_len, truncation=True, padding="max_length", return_tensors="pt")
    return Tokens(enc["input_ids"], enc["attention_mask"])


def encode(model, batch: dict, amp: str | None) -> torch.Tensor:
    """CLS pooling (``create_tf_pooler('cls')``), then L2 normalisation (``norm_embs``), in float32."""
    dev = batch["input_ids"].device
    with torch.autocast(dev.type, dtype=getattr(torch, amp) if amp else None, enabled=bool(amp)):
        cls = model(**batch).last_hidden_state[:, 0]
    return F.normalize(cls.float(), dim=1)


@contextmanager
def replay_rng(state):
    """Run a block with the RNG state of an earlier forward pass (``RandContext`` in the official
    utils/dl_utils.py), so dropout draws the same masks when a chunk is re-encoded with a graph."""
    cpu, cuda = state
    devices = [torch.cuda.current_device()] if cuda is not None else []
    with torch.random.fork_rng(devices=devices):
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda)
        yield


def _rng_state(device: torch.device):
    return torch.get_rng_state(), (torch.cuda.get_rng_state() if device.type == "cuda" else None)


def grad_cached_step(model, q_chunks, l_chunks, loss_fn, amp: str | None) -> float:
    """One step's backward through ``loss_fn(q_emb, l_emb)`` with gradient caching (Gao et al. 2021,
    the official ``gc_bsz``): the same gradients as encoding everything with a graph, in chunk memory."""
    device = q_chunks[0]["input_ids"].device
    embs, states = [], []
    with torch.no_grad():
        for b in (*q_chunks, *l_chunks):
            states.append(_rng_state(device))
            embs.append(encode(model, b, amp))
    nq = len(q_chunks)
    q = torch.cat(embs[:nq]).requires_grad_()
    lab = torch.cat(embs[nq:]).requires_grad_()
    loss = loss_fn(q, lab)
    loss.backward()
    grads = (*q.grad.split([len(e) for e in embs[:nq]]), *lab.grad.split([len(e) for e in embs[nq:]]))
    for b, g, s in zip((*q_chunks, *l_chunks), grads, states):
        with replay_rng(s):
            (encode(model, b, amp) * g).sum().backward()
    return loss.item()


def _no_decay(name: str, p: torch.Tensor) -> bool:
    """optimizer_bundles._no_decay: biases, LayerNorms and scalars get no weight decay."""
    n = name.lower()
    return "bias" in n or "layernorm" in n or "layer_norm" in n or p.shape == (1,)


@torch.no_grad()
def embed_all(model, tokens: Tokens, bsz: int, device, amp) -> torch.Tensor:
    model.eval()
    out = [encode(model, tokens.batch(np.arange(i, min(i + bsz, len(tokens))), device), amp).cpu()
           for i in range(0, len(tokens), bsz)]  # fmt: skip
    return torch.cat(out)


# --------------------------------------------------------------------------- one run


def run_full(cfg: dict, seed: int, ctx) -> dict:
    """One loss (``cfg["loss"]``) at one seed on the local XC dataset with the local DistilBERT."""
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    data_root = local_path(cfg, "data_root", ENV_DATA, needs=f"a dataset folder holding {XC_LAYOUT}")
    model_dir = local_path(
        cfg, "model", ENV_MODEL, needs="a local DistilBERT directory (model + tokenizer, save_pretrained)"
    )
    device = ctx.device
    amp = cfg["amp"] if device.type == "cuda" else None
    data = load_xc(data_root)
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    torch.manual_seed(seed)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).to(device)
    trn, tst, lbl = (
        tokenize(tok, t, cfg["max_len"]) for t in (data.train_texts, data.test_texts, data.label_texts)
    )

    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": [p for n, p in params if _no_decay(n, p)], "weight_decay": 0.0},
         {"params": [p for n, p in params if not _no_decay(n, p)], "weight_decay": cfg["weight_decay"]}],
        lr=cfg["lr"],
    )  # fmt: skip
    n = len(trn)
    steps_per_epoch = math.ceil(n / cfg["batch_size"])  # the official loader keeps the last short batch
    total = steps_per_epoch * cfg["epochs"]
    sched = get_linear_schedule_with_warmup(opt, int(cfg["warmup"] * total), total)
    gen = torch.Generator().manual_seed(seed)  # batch order
    # positive sampling (ds_sample, softmax_sample) draws on the device of the scores
    sample_gen = torch.Generator(device=device).manual_seed(seed)
    gc = cfg["gc_batch"]
    label_chunks = [np.arange(i, min(i + gc, len(lbl))) for i in range(0, len(lbl), gc)]

    def loss_fn(idx):
        targets = data.train_targets[idx].to(device)
        return lambda q, lab: compute_loss(cfg["loss"], q @ lab.T / cfg["tau"], targets, sample_gen)

    step = 0
    for epoch in ctx.progress(range(cfg["epochs"]), desc=cfg["loss"]):
        model.train()
        perm = torch.randperm(n, generator=gen).numpy()
        ep_loss = 0.0
        for b in range(steps_per_epoch):
            idx = perm[b * cfg["batch_size"] : (b + 1) * cfg["batch_size"]]
            q_chunks = [trn.batch(idx[i : i + gc], device) for i in range(0, len(idx), gc)]
            l_chunks = [lbl.batch(c, device) for c in label_chunks]
            ep_loss += grad_cached_step(model, q_chunks, l_chunks, loss_fn(idx), amp)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
        ctx.log(step=step, epoch=epoch, loss=ep_loss / steps_per_epoch, lr=sched.get_last_lr()[0])

    lab = embed_all(model, lbl, cfg["eval_batch"], device, amp)
    q = embed_all(model, tst, cfg["eval_batch"], device, amp)
    scores = q @ lab.T
    if len(data.test_filter):
        scores[data.test_filter[:, 0], data.test_filter[:, 1]] = -float("inf")  # helper_utils._filter
    y = data.test_targets
    return {
        "p_at_1": precision_at_k(scores, y, 1),
        "p_at_5": precision_at_k(scores, y, 5),
        "ndcg_at_5": ndcg_at_k(scores, y, 5),
        "n_train": n,
        "n_test": len(tst),
        "n_labels": len(lbl),
        "mean_positives": float(data.train_targets.sum(1).double().mean()),
        "final_loss": ep_loss / steps_per_epoch,
    }
