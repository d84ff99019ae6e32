"""--scale full: English CoNLL03 NER with a local Hugging Face BERT checkpoint, fine-tuned as a BIO token
classifier with each compared loss and the official CoNLL03 script's hyperparameters
(``scripts/ner_enconll03/bert_dice.sh``: lr 3e-5, batch 36 x 8 accumulation, 10 epochs, dropout 0.2,
weight decay 0.01, warmup 1%, gradient clip 1.0, polynomial decay to lr/4; dice smooth 1, alpha 0.01,
squared denominator). The official model is BERT-MRC (start/end pointers per entity-type query); this
is the plain tagging head (see the README). Nothing is downloaded: the data folder and the checkpoint
come from ``cfg`` or the environment (``DICE_NLP_CONLL03``, ``DICE_NLP_BERT``).

Data layout: ``<root>/train.txt``, ``<root>/valid.txt`` (or ``dev.txt``), ``<root>/test.txt`` in the
CoNLL-2003 column format (token first, NER tag last, blank line between sentences, ``-DOCSTART-`` lines
skipped). Tags may be IOB1 or IOB2; seqeval scores spans either way.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from seqeval.metrics import f1_score
from torch import nn

from dice_nlp.tagger import IGNORE, TrainConfig, improves, make_loss
from xentlab.repro.local_data import MissingLocalData, local_path

DATA_ENV, MODEL_ENV = "DICE_NLP_CONLL03", "DICE_NLP_BERT"


def read_conll(path: Path) -> list[tuple[list[str], list[str]]]:
    """Sentences of a CoNLL-2003 file as (tokens, tags)."""
    sents, toks, tags = [], [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        cols = line.split()
        if not cols or cols[0] == "-DOCSTART-":
            if toks:
                sents.append((toks, tags))
            toks, tags = [], []
            continue
        toks.append(cols[0])
        tags.append(cols[-1])
    if toks:
        sents.append((toks, tags))
    return sents


def load_conll03(root: Path) -> dict[str, list[tuple[list[str], list[str]]]]:
    files = {
        "train": ["train.txt"],
        "val": ["valid.txt", "dev.txt", "testa.txt"],
        "test": ["test.txt", "testb.txt"],
    }
    out = {}
    for split, names in files.items():
        found = [root / n for n in names if (root / n).is_file()]
        if not found:
            raise MissingLocalData(f"{DATA_ENV}={root} lacks {' or '.join(names)} (CoNLL-2003 column format)")
        out[split] = read_conll(found[0])
    return out


def _encode(sents, tokenizer, label_ids: dict[str, int], max_length: int):
    """Word-piece encode; the first piece of each word carries its tag, other pieces are ignored."""
    enc = tokenizer([s[0] for s in sents], is_split_into_words=True, truncation=True, max_length=max_length)
    rows = []
    for i, (_, tags) in enumerate(sents):
        labels, prev = [], None
        for w in enc.word_ids(i):
            labels.append(IGNORE if w is None or w == prev else label_ids[tags[w]])
            prev = w
        rows.append((enc["input_ids"][i], labels))
    return rows


def _collate(rows, pad_id: int):
    width = max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        ids[i, : len(x)], labels[i, : len(y)] = torch.tensor(x), torch.tensor(y)
    return ids, (ids != pad_id).long(), labels


@torch.no_grad()
def _span_f1(model, rows, sents, tag_names, pad_id, device, batch_size) -> float:
    model.eval()
    preds = []
    for start in range(0, len(rows), batch_size):
        ids, mask, labels = _collate(rows[start : start + batch_size], pad_id)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.argmax(-1).cpu()
        for k in range(len(ids)):
            keep = labels[k] != IGNORE
            preds.append([tag_names[int(t)] for t in logits[k][keep]])
    gold = [tags[: len(p)] for (_, tags), p in zip(sents, preds)]  # truncation may drop a long tail
    return float(f1_score(gold, preds, zero_division=0))


def run_full(cfg: dict, seed: int, ctx) -> dict:
    """Fine-tune once per loss in ``cfg['losses']``; span-F1 on test at the best-dev epoch."""
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        get_polynomial_decay_schedule_with_warmup,
    )

    root = local_path(
        cfg, "data_root", DATA_ENV, needs="a folder with CoNLL-2003 train.txt, valid.txt, test.txt"
    )
    model_dir = local_path(cfg, "model", MODEL_ENV, needs="a local Hugging Face BERT checkpoint folder")
    data = load_conll03(root)
    if cfg.get("max_sentences"):
        data = {k: v[: cfg["max_sentences"]] for k, v in data.items()}
    tag_names = sorted({t for s in data["train"] for t in s[1]}, key=lambda t: (t != "O", t[2:], t))
    label_ids = {t: i for i, t in enumerate(tag_names)}
    for split in ("val", "test"):  # a tag unseen in training is scored as a miss, not a crash
        data[split] = [(w, [t if t in label_ids else "O" for t in ts]) for w, ts in data[split]]
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    rows = {k: _encode(v, tokenizer, label_ids, cfg["max_length"]) for k, v in data.items()}
    pad_id = tokenizer.pad_token_id
    counts = np.bincount([y for _, ys in rows["train"] for y in ys if y != IGNORE], minlength=len(tag_names))
    tcfg = TrainConfig(dice_alpha=cfg["dice_alpha"], dice_smooth=cfg["dice_smooth"], dice_square=cfg["dice_square"],
                       focal_gamma=cfg["focal_gamma"], wce_k=cfg["wce_k"])  # fmt: skip
    device = ctx.device
    out: dict = {}
    for loss_name in cfg["losses"]:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = AutoModelForTokenClassification.from_pretrained(
            model_dir, num_labels=len(tag_names), local_files_only=True, hidden_dropout_prob=cfg["dropout"]
        ).to(device)
        loss_fn = make_loss(loss_name, tcfg, counts)
        no_decay = ("bias", "LayerNorm.weight")
        groups = [
            {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
             "weight_decay": cfg["weight_decay"]},
            {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
        ]  # fmt: skip
        opt = torch.optim.AdamW(groups, lr=cfg["lr"])
        bs, acc = cfg["batch_size"], cfg["accumulate"]
        steps_per_epoch = max(1, -(-len(rows["train"]) // (bs * acc)))
        total = steps_per_epoch * cfg["epochs"]
        sched = get_polynomial_decay_schedule_with_warmup(
            opt, int(cfg["warmup"] * total), total, lr_end=cfg["lr"] / 4.0
        )  # the official "polydecay" schedule ends at lr / 4
        best_f1, best_state, curve = -1.0, None, []
        for _epoch in range(cfg["epochs"]):
            model.train()
            order = rng.permutation(len(rows["train"]))
            batches = [order[i : i + bs] for i in range(0, len(order), bs)]
            for b, idx in enumerate(batches):
                ids, mask, labels = _collate([rows["train"][i] for i in idx], pad_id)
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                (loss_fn(logits, labels.to(device)) / acc).backward()
                if (b + 1) % acc == 0 or b + 1 == len(batches):
                    nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
                    opt.step()
                    sched.step()
                    opt.zero_grad()
            f1 = _span_f1(model, rows["val"], data["val"], tag_names, pad_id, device, cfg["eval_batch_size"])
            curve.append(f1)
            ctx.log(loss=loss_name, epoch=_epoch + 1, val_f1=f1)
            if improves(f1, best_f1):  # the official rule: the last of tied dev F1s
                best_f1, best_state = f1, copy.deepcopy(model.state_dict())
        model.load_state_dict(best_state)
        test = _span_f1(model, rows["test"], data["test"], tag_names, pad_id, device, cfg["eval_batch_size"])
        out[f"val_f1_{loss_name}"], out[f"test_f1_{loss_name}"] = best_f1, test
        out[f"val_curve_{loss_name}"] = curve
    return out
