"""The "base model" of the cpu scale: the tiny char-level Llama pretrained with CE once and shared by
every (method, seed) unit.

The paper fine-tunes a pre-trained model (Llama-3-8B-base) that already generalises somewhat; its
Table 1 starts from that breadth. A model trained from scratch on 150 problems generalises to only
3-7% of the test problems, so the cpu protocol first pretrains one base model with CE and then
fine-tunes it with CE or DCO. First fix: pretraining on the train pool minus the fine-tuning set
(problems ``n_train .. pool_train``, the fine-tuning family itself; length chosen by
``scripts/select_base.py``). That base could only be overfit by fine-tuning on more of its own
distribution, so the second fix pretrains on a *shifted* mixture (``pretrain_pairs(task,
mixture)``: sums and products, the fine-tuning family absent or rare; chosen by
``scripts/select_shifted_base.py``). Every pretraining problem is disjoint from the fine-tuning,
test and validation problems.

Like the paper's single base model, the base is the same for every run seed (``cfg["seed"]``); the
run seeds vary the fine-tuning stream. It is built once and cached under ``cache_dir("dco")``
(keyed by its config and by the code that builds it, ``base_code()``; xentlab.data.cache, "The key
rule"): parallel units wait on a file lock while the first one trains it (``xentlab.data.build_once``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from collections.abc import Callable
from typing import Any

import torch

from xentlab.data.cache import code_key, source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the base's cache key (xentlab.data.cache, "The key rule")"""

# The modules whose code shapes the pretrained weights besides the LM stack (xentlab.lm.code): this
# package's data, model, loss and training loop, the tokenizer and the arithmetic problems.
_CODE_MODULES = (
    "dco.task",
    "dco.experiment",
    "dco.train",
    "dco.loss",
    "xentlab.data.tokenizer",
    "xentlab.data.arithmetic",
)


@functools.lru_cache(maxsize=1)
def base_code() -> str:
    """The code part of the base's cache key: this module, ``_CODE_MODULES`` and the LM stack with its loss
    backend (``xentlab.lm.code.lm_stack_digests``), plus the libraries whose numbers end up in the weights.
    Any edit of that code gives a new key, so a base trained by older code is never loaded (the cache once
    served stale data to cprd)."""
    from xentlab.lm.code import lm_stack_digests

    return code_key(SOURCE_DIGEST, *lm_stack_digests(*_CODE_MODULES),
                    libraries=("numpy", "torch", "tokenizers", "transformers"))  # fmt: skip


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


# The "parts" of the shifted pretraining mixture: 2-digit sums "23+45" (level 1) and products of a
# 2-digit and a 1-digit number "6*43" / "43*6" (level 3), i.e. the two operations of the fine-tuning
# family a+f*b without their composition. None of these strings is a level-4 expression, so they
# are disjoint from the fine-tuning, test and validation problems by construction.
PARTS_FAMILY = {"max_operand": 99, "min_operand": 10, "max_factor": 9, "level_weights": (1, 0, 1, 0)}
PARTS_SEED = 4321
# the fine-tuning family with a 2-digit addend (10..99) instead of a 1-digit one: "23+6*43"
WIDE_FAMILY = {"max_operand": 99, "min_operand": 10, "max_factor": 9, "level_weights": (0, 0, 0, 1)}


def _swap(expr: str) -> str:
    """ "7+6*43" -> "6*43+7" (the same value, the product written first)."""
    a, prod = expr.split("+")
    return f"{prod}+{a}"


def pretrain_pairs(task: dict, mixture: dict | None = None) -> list[tuple[str, str]]:
    """The pretraining problems.

    ``mixture`` None (the previous protocol): the train-pool problems after the fine-tuning set,
    [n_train, pool_train), i.e. the fine-tuning distribution itself.
    ``mixture`` {"n", "target_frac"} (the shifted base): ``n`` problems of which a fraction
    ``target_frac`` (rounded) are fine-tuning-family problems taken from [n_train, pool_train) (so
    still disjoint from fine-tuning, test and validation) and the rest are the "parts"
    (``PARTS_FAMILY``: sums and products, not the composition), shuffled with a fixed seed."""
    import random

    from dco.task import TASK_SEED, arithmetic_config, problem_pairs
    from xentlab.data.arithmetic import ArithmeticConfig, make_arithmetic

    pool = make_arithmetic(arithmetic_config(task["pool_train"], task["n_test"]), TASK_SEED).train
    rest = pool[task["n_train"] :]
    if mixture is None:
        return problem_pairs(rest)
    kind = mixture.get("kind", "parts")
    if kind == "swapped":  # the same unused problems, the prompt written product first: "6*43+7="
        if int(mixture["n"]) > len(rest):
            raise ValueError(
                f"{mixture['n']} swapped problems requested, only {len(rest)} unused in the pool"
            )
        return [(_swap(p.expr) + "=", p.target) for p in rest[: int(mixture["n"])]]
    if kind == "wide_addend":  # a+f*b with a 2-digit addend a (10..99): "23+6*43="
        cfg = ArithmeticConfig(n_train=int(mixture["n"]), n_heldout=0, **WIDE_FAMILY)
        return problem_pairs(make_arithmetic(cfg, PARTS_SEED).train)
    if kind != "parts":
        raise ValueError(f"unknown mixture kind {kind!r} (parts, swapped, wide_addend)")
    n, frac = int(mixture["n"]), float(mixture["target_frac"])
    if not 0.0 <= frac <= 1.0:
        raise ValueError(f"target_frac must be in [0, 1], got {frac}")
    n_target = round(frac * n)
    if n_target > len(rest):
        raise ValueError(f"{n_target} target-family problems requested, only {len(rest)} unused in the pool")
    parts = make_arithmetic(ArithmeticConfig(n_train=n - n_target, n_heldout=0, **PARTS_FAMILY), PARTS_SEED)
    pairs = problem_pairs(rest[:n_target]) + problem_pairs(parts.train)
    random.Random(f"dco-mixture|{PARTS_SEED}").shuffle(pairs)
    return pairs


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

    pairs = pretrain_pairs(task, base.get("mixture"))
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
    blob = json.dumps({"model": model_cfg, "task": task, "base": base, "code": base_code()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_base(model_cfg: dict, task: dict, base: dict, tok: Any):
    """The pretrained base model (cached; trained on first use by ``xentlab.data.build_once.build_once``:
    under a lock, with one torch thread, the caller's global RNG states left as they were)."""
    from dco.experiment import build_model
    from xentlab.data.build_once import build_once
    from xentlab.data.cache import cache_dir

    def build(tmp):
        model = pretrain(model_cfg, task, base, tok)
        buf = io.BytesIO()  # through a buffer: torch.save(path) would put the temporary's name in the zip
        torch.save(model.state_dict(), buf)
        tmp.write_bytes(buf.getvalue())

    path = build_once(cache_dir("dco") / f"base_{_key(model_cfg, task, base)}.pt", build)
    model = build_model(model_cfg, tok, seed=base["seed"])
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model
