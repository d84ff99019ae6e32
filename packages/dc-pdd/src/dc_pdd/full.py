"""--scale full: a local Hugging Face causal LM on WikiMIA-style jsonl, reference frequencies from
local text shards (the paper: Pythia/OPT/Llama on WikiMIA and BookMIA, C4 shards for f(v)).

Inputs (config key or environment variable; never downloaded, see ``xentlab.repro.local_data``):

* ``model`` / ``$DC_PDD_MODEL``: a directory with a causal LM and its tokenizer (``save_pretrained``).
* ``data`` / ``$DC_PDD_DATA``: a jsonl file, one ``{"text": ..., "label": 0|1}`` per line
  (1 = member, as WikiMIA; the key ``input`` is accepted for ``text``).
* ``reference`` / ``$DC_PDD_REFERENCE``: a jsonl(.gz) file or a directory of them, one ``{"text": ...}``
  per line (the official code reads 15 C4 shards, ``c4-train.0000x-of-01024.json.gz``).
* ``ref_model`` / ``$DC_PDD_REF_MODEL`` (optional): a smaller model with the same tokenizer for the
  Ref baseline (the official code uses pythia-70M).

The data are split once per seed into dev (``dev_frac``, stratified) and test; a is chosen on dev.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import torch

from dc_pdd.experiment import A_GRID, METHODS, choose_a, score_texts
from dc_pdd.lm_scoring import token_stats
from dc_pdd.metrics import detection_metrics, roc_points
from dc_pdd.scores import count_tokens, ref_ratio_score, token_frequencies, zlib_text
from xentlab.repro.local_data import local_path


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def reference_files(root: Path) -> list[Path]:
    files = [root] if root.is_file() else sorted(p for p in root.iterdir() if ".json" in p.name)
    if not files:
        raise FileNotFoundError(f"no *.jsonl / *.json.gz reference shards in {root}")
    return files


def load_labelled(path: Path) -> tuple[list[str], np.ndarray]:
    rows = read_jsonl(path)
    texts, labels = [], []
    for i, r in enumerate(rows):
        text = r.get("text", r.get("input"))
        if text is None or r.get("label") not in (0, 1):
            raise ValueError(f"{path} line {i + 1}: need 'text' (or 'input') and 'label' 0/1")
        texts.append(text)
        labels.append(int(r["label"]))
    return texts, np.asarray(labels)


def _load_model(path: Path, device, dtype: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        str(path), local_files_only=True, torch_dtype=getattr(torch, dtype)
    ).to(device)
    return model.eval(), tok


def stratified_split(labels: np.ndarray, dev_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(dev indices, test indices), each class split in the same proportion."""
    rng = np.random.default_rng(seed)
    dev, test = [], []
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_dev = int(round(dev_frac * idx.size))
        if n_dev < 1 or n_dev >= idx.size:
            raise ValueError(f"dev_frac={dev_frac} leaves an empty dev or test split for label {c}")
        dev.append(idx[:n_dev])
        test.append(idx[n_dev:])
    return np.sort(np.concatenate(dev)), np.sort(np.concatenate(test))


def run_full(cfg: dict, seed: int, ctx) -> dict:
    model_dir = local_path(
        cfg, "model", "DC_PDD_MODEL", needs="a local causal LM directory (save_pretrained)"
    )
    data_path = local_path(cfg, "data", "DC_PDD_DATA", needs="a jsonl file of {text, label} rows (WikiMIA)")
    ref_root = local_path(
        cfg, "reference", "DC_PDD_REFERENCE", needs="a jsonl(.gz) file or directory of reference text shards"
    )
    ref_model_dir = local_path(
        cfg, "ref_model", "DC_PDD_REF_MODEL", needs="a small reference causal LM", required=False
    )
    model, tok = _load_model(model_dir, ctx.device, cfg["dtype"])
    vocab = max(model.get_output_embeddings().weight.shape[0], len(tok))

    # Sec. 3.2: token counts of the reference corpus (first max_ref_tokens tokens of each document)
    docs = (
        tok(r["text"], add_special_tokens=False)["input_ids"]
        for f in reference_files(ref_root)
        for r in read_jsonl(f)[: cfg["max_ref_docs_per_file"]]
    )
    freq = token_frequencies(count_tokens(docs, vocab, max_tokens=cfg["max_ref_tokens"]))

    texts, labels = load_labelled(data_path)
    # as com_pro_dis.py: the tokenizer's own encoding, truncated; position 0 has no context
    seqs = [tok(t, truncation=True, max_length=cfg["max_tokens"])["input_ids"] for t in texts]
    if any(len(s) < 2 for s in seqs):
        raise ValueError("every text needs at least 2 tokens")
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    stats = token_stats(model, seqs, batch_size=cfg["batch_size"], pad_id=pad, device=ctx.device)
    # zlib compresses the official cal_met text: the first max_cha words, single-spaced
    scores = score_texts(stats, [zlib_text(t, cfg["max_cha"]) for t in texts], freq)
    if ref_model_dir is not None:
        ref_model, _ = _load_model(ref_model_dir, ctx.device, cfg["dtype"])
        ref_stats = token_stats(ref_model, seqs, batch_size=cfg["batch_size"], pad_id=pad, device=ctx.device)
        scores["ref_model"] = np.array([ref_ratio_score(s.logp, r.logp) for s, r in zip(stats, ref_stats)])

    dev, test = stratified_split(labels, cfg["dev_frac"], seed)
    a = choose_a({k: v[dev] for k, v in scores.items()}, labels[dev])
    scores["dc_pdd"] = scores[f"dc_pdd@{a:g}"]
    out: dict = {"a_chosen": f"{a:g}", "log10_a_chosen": math.log10(a) if math.isfinite(a) else 3.0}
    methods = [*METHODS, *(["ref_model"] if "ref_model" in scores else [])]
    for m in methods:
        for key, v in detection_metrics(scores[m][test], labels[test]).items():
            out[f"{key}_{m}"] = v
    for a_ in A_GRID:
        out[f"test_auc_dc_pdd_a={a_:g}"] = detection_metrics(scores[f"dc_pdd@{a_:g}"][test], labels[test])[
            "auc"
        ]
    out["roc"] = {m: roc_points(scores[m][test], labels[test]) for m in methods}
    return out
