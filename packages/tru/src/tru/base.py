"""The original model: a tiny Llama pretrained on Python's docs, then fine-tuned on every fact.

Built once per (seed, config) and cached under ``xentlab.data.cache_dir("tru", "base")``, so
all methods of a seed start from the same weights; a file lock makes a second process wait for
the first one's model instead of training its own.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import random
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xentlab.data.cache import atomic_write_json, cache_dir

BASE_VERSION = "1"  # bump when the base recipe changes in a way the config does not show


@dataclass
class Base:
    model: Any
    tokenizer: Any
    task: Any
    pydoc_heldout: list  # held-out pretraining examples (the general-language probe)
    metrics: dict[str, Any]  # the original model's evaluation (test + val panels, pydoc loss)
    path: Path


def tokenizer_for(cfg: dict) -> Any:
    from xentlab.data.facts import tokenizer_corpus
    from xentlab.data.tokenizer import get_tokenizer

    return get_tokenizer(tokenizer_corpus(), vocab_size=cfg["vocab_size"])


def pydoc_examples(tokenizer: Any, seq_len: int, seed: int) -> tuple[list, list]:
    """Pretraining windows of Python's docs; 5% held out (by window, seeded) as a probe."""
    from xentlab.data.tokenizer import pydoc_text
    from xentlab.lm.train import text_examples

    ex = text_examples(tokenizer, pydoc_text(), seq_len)
    order = list(range(len(ex)))
    random.Random(f"pydoc-{seed}").shuffle(order)
    n_held = max(8, len(ex) // 20)
    return [ex[i] for i in order[n_held:]], [ex[i] for i in order[:n_held]]


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def base_key(cfg: dict, seed: int) -> str:
    blob = json.dumps({"cfg": cfg, "seed": seed, "v": BASE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def get_base(cfg: dict, seed: int, *, log: Any = None) -> Base:
    """Load the cached original model for (cfg, seed), or train, evaluate and cache it."""
    import torch

    from xentlab.lm.train import LMTrainConfig, mean_loss, pretrain_then_finetune, sft_example
    from xentlab.models.tiny_lm import build_tiny_lm, load_tiny_lm, preset, save_tiny_lm
    from xentlab.train.seeding import seed_everything

    from tru.data import build_task
    from tru.evaluate import Judge, evaluate_panels, flatten

    tok = tokenizer_for(cfg)
    task = build_task(seed, **cfg["task"])
    pre, held = pydoc_examples(tok, cfg["pretrain_seq"], seed)
    root = cache_dir("tru", "base")
    key = base_key(cfg, seed)
    path = root / f"seed{seed}-{key}"
    with _locked(root / f".{key}.lock"):
        if (path / "metrics.json").exists():
            model = load_tiny_lm(path / "model")
            return Base(model, tok, task, held, json.loads((path / "metrics.json").read_text()), path)
        seed_everything(seed)
        model = build_tiny_lm(preset(cfg["model"], vocab_size=len(tok)), tok, seed=seed)
        ft = [sft_example(tok, qa.question, qa.answer) for qa in task.finetune]
        hist = pretrain_then_finetune(
            model,
            pre,
            ft,
            LMTrainConfig(steps=cfg["pretrain_steps"], batch_size=cfg["pretrain_batch"], lr=cfg["pretrain_lr"]),
            LMTrainConfig(
                steps=cfg["finetune_steps"],
                batch_size=cfg["finetune_batch"],
                lr=cfg["finetune_lr"],
                replay_batch=cfg["replay_batch"],
            ),
            pad_id=tok.pad_token_id,
            seed=seed,
            on_log=(lambda phase, s, row: log(phase=phase, **row)) if log else None,  # row has "step"
        )
        model.eval()
        judge = Judge(task.bank)
        with torch.no_grad():
            test = evaluate_panels(model, tok, judge, task.panels_test, max_new_tokens=cfg["max_new_tokens"])
            val = evaluate_panels(model, tok, judge, task.panels_val, max_new_tokens=cfg["max_new_tokens"])
            relearn = evaluate_panels(
                model, tok, judge, {"relearn": task.relearn_test}, max_new_tokens=cfg["max_new_tokens"]
            )
        metrics = {
            **flatten(test),
            **flatten(val, "val_"),
            "relearn_em": relearn["relearn"].em,
            "pydoc_loss": mean_loss(model, held, pad_id=tok.pad_token_id),
            "finetune_loss": hist["finetune"][-1]["loss"],
            "pretrain_loss": hist["pretrain"][-1]["loss"] if hist["pretrain"] else None,
            "examples": {k: r.examples for k, r in test.items()},
        }
        save_tiny_lm(model, path / "model")
        atomic_write_json(path / "metrics.json", metrics)
        return Base(model, tok, task, held, metrics, path)
