"""The original model: a tiny Llama fine-tuned from scratch on every fact.

No pretraining phase at cpu scale: 60 steps of language modelling on Python's docs before the
facts left the model at 12% retain exact match after 250 fine-tuning steps, against 100% from
scratch (measured, seed 0), and the budget has no room for a pretraining run long enough to help.

Built once per (seed, config, code) and cached under ``xentlab.data.cache_dir("tru", "base")`` (the key holds
``base_code()``, a hash of the code that builds, trains and evaluates it; xentlab.data.cache, "The key rule"), so
all methods of a seed start from the same weights. ``xentlab.data.build_once`` builds it: a file lock
makes a second process wait for the first one's model instead of training its own, the training runs with
one torch thread, and the folder is renamed into place only once model and metrics are both written.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xentlab.data.build_once import build_once
from xentlab.data.cache import atomic_write_json, cache_dir, code_key, source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache key (xentlab.data.cache, "The key rule")"""


@functools.lru_cache(maxsize=1)
def base_code() -> str:
    """The code part of ``base_key``: this module (tokenizer corpus, recipe), ``tru.data`` / ``tru.targets`` /
    ``tru.evaluate`` (task, targets, the stored evaluation), ``xentlab.data.tokenizer`` and the core modules
    of ``xentlab.lm.code.lm_stack_digests`` (the LM stack and the facts generator), the LM loss backend, and the libraries whose numbers end up in the weights and
    metrics. It replaces the hand-bumped ``BASE_VERSION = "1"``, which had to be remembered at every
    edit of that code; a source hash cannot be forgotten."""
    from tru import data, evaluate, targets
    from xentlab.data import tokenizer
    from xentlab.lm.code import lm_stack_digests

    core = lm_stack_digests("xentlab.data.facts")
    return code_key(SOURCE_DIGEST, data.SOURCE_DIGEST, targets.SOURCE_DIGEST, evaluate.SOURCE_DIGEST,
                    tokenizer.SOURCE_DIGEST, *core,
                    libraries=("numpy", "torch", "transformers", "tokenizers"))  # fmt: skip


@dataclass
class Base:
    model: Any
    tokenizer: Any
    task: Any
    metrics: dict[str, Any]  # the original model's evaluation (test + val panels)
    path: Path


def tokenizer_for(cfg: dict) -> Any:
    """Byte-level BPE on Python's docs + the task's own text: fact QA in both languages and the
    reasoning / refusal targets (of banks that no run uses, so no run seed leaks into it)."""
    from tru.targets import target_text
    from xentlab.data.facts import FactsConfig, make_fact_bank, tokenizer_corpus
    from xentlab.data.tokenizer import get_tokenizer

    bank = make_fact_bank(FactsConfig(n_authors=60), seed=10_000)
    targets = [target_text(f, reasoning=True) for f in bank.facts()]
    return get_tokenizer(tokenizer_corpus() + targets, vocab_size=cfg["vocab_size"])


def base_key(cfg: dict, seed: int, task: Any = None, tokenizer: Any = None) -> str:
    """Cache key: the config, the seed, the code (``base_code()``), and (when given) the exact fine-tuning
    data and vocabulary."""
    h = hashlib.sha256(json.dumps({"cfg": cfg, "seed": seed, "code": base_code()}, sort_keys=True).encode())
    if task is not None:
        for qa in task.finetune:
            h.update(f"{qa.question}\x00{qa.answer}\x01".encode())
    if tokenizer is not None:
        from dataclasses import asdict

        from xentlab.models.tiny_lm import preset

        h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
        h.update(json.dumps(asdict(preset(cfg["model"], vocab_size=len(tokenizer))), sort_keys=True).encode())
    return h.hexdigest()[:16]


def get_base(cfg: dict, seed: int, *, log: Any = None) -> Base:
    """Load the cached original model for (cfg, seed), or train, evaluate and cache it (a folder
    ``seed<seed>-<key>/`` with ``model/`` and ``metrics.json``; the model is always read back from it, so
    the unit that trained it and the units that load it use the same weights)."""
    import torch

    from tru.data import build_task
    from tru.evaluate import Judge, evaluate_panels, flatten
    from xentlab.lm.train import LMTrainConfig, fit_lm, sft_example
    from xentlab.models.tiny_lm import build_tiny_lm, load_tiny_lm, preset, save_tiny_lm
    from xentlab.train.seeding import seed_everything

    tok = tokenizer_for(cfg)
    task = build_task(seed, **cfg["task"])

    def build(tmp: Path) -> None:
        seed_everything(seed)
        model = build_tiny_lm(preset(cfg["model"], vocab_size=len(tok)), tok, seed=seed)
        ft = [sft_example(tok, qa.question, qa.answer) for qa in task.finetune]
        hist = fit_lm(
            model,
            ft,
            LMTrainConfig(
                steps=cfg["finetune_steps"], batch_size=cfg["finetune_batch"], lr=cfg["finetune_lr"]
            ),
            pad_id=tok.pad_token_id,
            seed=seed,
            on_log=(lambda s, row: log(phase="finetune", **row)) if log else None,  # row has "step"
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
            "finetune_loss": hist[-1]["loss"],
            "examples": {k: r.examples for k, r in test.items()},
        }
        save_tiny_lm(model, tmp / "model")
        atomic_write_json(tmp / "metrics.json", metrics)

    # an entry without metrics.json is a folder an older version left half-written: rebuilt
    path = build_once(cache_dir("tru", "base") / f"seed{seed}-{base_key(cfg, seed, task, tok)}", build,
                      valid=lambda p: (p / "metrics.json").exists())  # fmt: skip
    model = load_tiny_lm(path / "model")
    return Base(model, tok, task, json.loads((path / "metrics.json").read_text()), path)
