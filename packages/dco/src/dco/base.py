"""The "base model" of the cpu scale: the tiny char-level Llama pretrained with CE on a disjoint part
of the train pool, once, and shared by every (method, seed) unit.

The paper fine-tunes a pre-trained model (Llama-3-8B-base) that already generalises somewhat; its
Table 1 starts from that breadth. A model trained from scratch on 150 problems generalises to only
3-7% of the test problems, so the cpu protocol first pretrains one base model with CE on the train
pool minus the fine-tuning set (problems ``n_train .. pool_train``: disjoint from the fine-tuning,
test and validation problems) and fine-tunes it with CE or DCO. The pretraining length was chosen
on the validation split (``scripts/select_base.py``; ``results/base_selection.json``).

Like the paper's single base model, the base is the same for every run seed (``cfg["seed"]``); the
run seeds vary the fine-tuning stream. It is built once and cached under ``cache_dir("dco")``
(keyed by its config): parallel units wait on a file lock while the first one trains it.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from typing import Any

import torch


def pretrain_config(base: dict, batch_size: int, steps_per_epoch: int):
    """dco.train.TrainConfig of the pretraining: CE, ``base["epochs"]`` epochs, a fixed number of
    warm-up steps (so a shorter run is exactly a checkpoint of a longer one), then constant lr."""
    from dco.train import TrainConfig

    total = base["epochs"] * steps_per_epoch
    return TrainConfig(
        n_prime=1,
        epochs=base["epochs"],
        batch_size=batch_size,
        lr=base["lr"],
        warmup_frac=base["warmup_steps"] / total,
        eval_every=base["epochs"],
    )


def pretrain_pairs(task: dict) -> list[tuple[str, str]]:
    """Train-pool problems after the fine-tuning set: [n_train, pool_train)."""
    from dco.task import TASK_SEED, arithmetic_config, problem_pairs
    from xentlab.data.arithmetic import make_arithmetic

    pool = make_arithmetic(arithmetic_config(task["pool_train"], task["n_test"]), TASK_SEED).train
    return problem_pairs(pool[task["n_train"] :])


def pretrain(
    model_cfg: dict,
    task: dict,
    base: dict,
    tok: Any,
    *,
    evaluate: Callable[[int, Any], dict] | None = None,
):
    """Build the model with seed ``base["seed"]`` and pretrain it with CE. ``evaluate(epoch, model)``
    (optional) runs every ``base["eval_every"]`` epochs (used by the selection script)."""
    import math

    from dco.experiment import build_model
    from dco.task import examples
    from dco.train import train

    pairs = pretrain_pairs(task)
    model = build_model(model_cfg, tok, seed=base["seed"])
    bs = base["batch_size"]
    cfg = pretrain_config(base, bs, math.ceil(len(pairs) / bs))
    every = base.get("eval_every") or base["epochs"]
    cfg = type(cfg)(**{**cfg.__dict__, "eval_every": every})
    train(
        model,
        tok,
        examples(tok, pairs),
        cfg,
        seed=base["seed"],
        evaluate=(lambda epoch: evaluate(epoch, model)) if evaluate else (lambda epoch: {}),
    )
    return model


def _key(model_cfg: dict, task: dict, base: dict) -> str:
    blob = json.dumps({"model": model_cfg, "task": task, "base": base}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_base(model_cfg: dict, task: dict, base: dict, tok: Any):
    """The pretrained base model (cached; trained on first use, under a lock)."""
    from dco.experiment import build_model
    from xentlab.data.cache import atomic_write_bytes, cache_dir, file_lock

    d = cache_dir("dco")
    path = d / f"base_{_key(model_cfg, task, base)}.pt"
    with file_lock(d / f"{path.name}.lock"):
        if not path.exists():
            model = pretrain(model_cfg, task, base, tok)
            buf = io.BytesIO()
            torch.save(model.state_dict(), buf)
            atomic_write_bytes(path, buf.getvalue())
    model = build_model(model_cfg, tok, seed=base["seed"])
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model
