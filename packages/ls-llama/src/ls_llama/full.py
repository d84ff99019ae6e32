"""--scale full: LS-LLaMA / LS-unLLaMA on CoNLL03 with a local Hugging Face Llama checkpoint.

Nothing is downloaded. Paths (``cfg`` keys, else environment variables):
  LS_LLAMA_MODEL      a local HF Llama directory (config, weights, fast tokenizer), e.g. Llama-2-7b-hf
  LS_LLAMA_CONLL03    a directory with train.jsonl, validation.jsonl, test.jsonl; one sentence per line:
                      {"tokens": [...words...], "ner_tags": [...]} with HF conll2003 tag ids (or strings)
Official hyperparameters (unllama_token_clf.py): 10 epochs, batch 8, lr 1e-4, wd 0.01, max_length 64,
LoRA r=12/alpha=32/dropout=0.1, bf16, and the Trainer defaults they keep (linear lr decay to 0 without
warm-up, no weight decay on bias/norm, grad-norm clip 1.0; ``train.trainer_optimizer``).
The epoch is chosen on validation, not test (official: test).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from xentlab.repro.local_data import MissingLocalData, local_path

# label order of the official script (= HF conll2003 ner_tags ids)
CONLL_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
IGNORE = -100


def load_conll_jsonl(path: Path) -> list[tuple[list[str], list[int]]]:
    if not path.exists():
        raise MissingLocalData(f"{path} is missing: LS_LLAMA_CONLL03 must hold train/validation/test .jsonl")
    out = []
    for ln, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        tags = [CONLL_LABELS.index(t) if isinstance(t, str) else int(t) for t in row["ner_tags"]]
        if len(tags) != len(row["tokens"]) or any(not 0 <= t < len(CONLL_LABELS) for t in tags):
            raise ValueError(f"{path}:{ln}: tokens and ner_tags must align and use the 9 CoNLL03 tags")
        out.append((list(row["tokens"]), tags))
    return out


def encode(tokenizer, sents, max_length: int):
    """Tokenise words; label only the FIRST sub-token of each word (others and specials -100), as
    the official tokenize_and_align_labels."""
    enc = tokenizer([s[0] for s in sents], is_split_into_words=True, truncation=True, max_length=max_length)
    labels = []
    for i, (_, tags) in enumerate(sents):
        prev, lab = None, []
        for w in enc.word_ids(batch_index=i):
            lab.append(IGNORE if w is None or w == prev else tags[w])
            prev = w
        labels.append(lab)
    return enc["input_ids"], labels


def _batch(ids, labels, idx, pad_id):
    t = max(len(ids[i]) for i in idx)
    x = torch.full((len(idx), t), pad_id, dtype=torch.long)
    y = torch.full((len(idx), t), IGNORE, dtype=torch.long)
    m = torch.zeros((len(idx), t), dtype=torch.long)
    for r, i in enumerate(idx):  # right padding
        n = len(ids[i])
        x[r, :n], y[r, :n], m[r, :n] = torch.tensor(ids[i]), torch.tensor(labels[i]), 1
    return x, m, y


@torch.no_grad()
def _f1(model, ids, labels, attention, bs, pad_id, device) -> float:
    from seqeval.metrics import f1_score

    from ls_llama.model import token_logits

    model.eval()
    yt, yp = [], []
    for s in range(0, len(ids), bs):
        x, m, y = _batch(ids, labels, list(range(s, min(s + bs, len(ids)))), pad_id)
        pred = token_logits(model, x.to(device), m.to(device), attention).argmax(-1).cpu()
        for p, l in zip(pred, y):
            keep = l != IGNORE
            yt.append([CONLL_LABELS[i] for i in l[keep].tolist()])
            yp.append([CONLL_LABELS[i] for i in p[keep].tolist()])
    return float(f1_score(yt, yp, zero_division=0))


def load_model(model_path: Path, num_labels: int, cfg: dict, device, seed: int):
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoConfig, LlamaForTokenClassification

    dtype = torch.bfloat16 if cfg.get("bf16") and device.type == "cuda" else torch.float32
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the fresh label head
        config = AutoConfig.from_pretrained(str(model_path), local_files_only=True)
        config.num_labels = num_labels
        config.token_classification_bias = True  # official token head: Linear(hidden, num_labels) with bias
        config.classifier_dropout = 0.1
        model = LlamaForTokenClassification.from_pretrained(
            str(model_path), config=config, attn_implementation="eager", dtype=dtype, local_files_only=True
        )
        lora = LoraConfig(
            task_type=TaskType.TOKEN_CLS, inference_mode=False,
            r=cfg["lora_r"], lora_alpha=cfg["lora_alpha"], lora_dropout=cfg["lora_dropout"],
        )  # fmt: skip
        return get_peft_model(model, lora).to(device)


def run_full(cfg: dict, seed: int, ctx) -> dict:
    from transformers import AutoTokenizer

    from ls_llama.model import token_logits
    from ls_llama.train import TRAINER_MAX_GRAD_NORM, trainer_optimizer

    model_path = local_path(
        cfg, "model_path", "LS_LLAMA_MODEL", needs="a local HF Llama checkpoint directory"
    )
    data_dir = local_path(cfg, "data_dir", "LS_LLAMA_CONLL03", needs="a directory of CoNLL03 .jsonl splits")
    tok = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    tok.padding_side = "right"
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.unk_token_id or 0)
    splits = {s: encode(tok, load_conll_jsonl(data_dir / f"{s}.jsonl"), cfg["max_length"])
              for s in ("train", "validation", "test")}  # fmt: skip
    out: dict = {}
    bs = cfg["batch_size"]
    for arm in cfg["arms"]:
        model = load_model(model_path, len(CONLL_LABELS), cfg, ctx.device, seed)
        ids, labels = splits["train"]
        # the official Trainer's defaults: linear decay to 0, no decay on bias/norm, grad-norm clip 1.0
        total = cfg["epochs"] * -(-len(ids) // bs)
        opt, sched = trainer_optimizer(
            model, lr=cfg["lr"], weight_decay=cfg["weight_decay"], total_steps=total
        )
        params = [p for p in model.parameters() if p.requires_grad]
        rng = np.random.default_rng(seed)
        # each arm's dropout stream from the unit seed, whatever arms ran before it (as ``train.finetune``)
        torch.manual_seed(seed + 2)
        best_val, best_test, curve = -1.0, 0.0, []
        for epoch in range(cfg["epochs"]):
            model.train()
            order = rng.permutation(len(ids))
            for s in range(0, len(ids), bs):
                x, m, y = _batch(ids, labels, order[s : s + bs], pad_id)
                logits = token_logits(model, x.to(ctx.device), m.to(ctx.device), arm).float()
                loss = F.cross_entropy(logits.flatten(0, 1), y.to(ctx.device).flatten(), ignore_index=IGNORE)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, TRAINER_MAX_GRAD_NORM)
                opt.step()
                sched.step()
            val = _f1(model, *splits["validation"], arm, bs, pad_id, ctx.device)
            curve.append(100 * val)
            ctx.log(epoch=epoch, arm=arm, loss=loss.item(), val_f1=val)
            if val > best_val:  # select on validation; test read only at the chosen epoch
                best_val, best_test = val, _f1(model, *splits["test"], arm, bs, pad_id, ctx.device)
        out[f"f1_{arm}"], out[f"val_f1_{arm}"], out[f"val_curve_{arm}"] = (
            100 * best_test,
            100 * best_val,
            curve,
        )
    if "causal" in cfg["arms"] and "unmasked" in cfg["arms"]:
        out["gap_f1"] = out["f1_unmasked"] - out["f1_causal"]
    return out
