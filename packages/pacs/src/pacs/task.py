"""The cpu-scale task: verifiable arithmetic (``xentlab.data.arithmetic``), a byte-level tokenizer,
and the SFT start model shared by every RL method of a seed.

Tokenizer: byte-level with no merges (vocabulary 259 = 256 bytes + pad/bos/eos), so every digit,
sign and operator is one token and numbers are spelled out digit by digit (a BPE would merge
digit runs inconsistently, e.g. "12" as one token but "13" as two).

The SFT model ("the base model with a nonzero pass rate" of the paper) is trained on a fraction
of the train pool and cached under ``xentlab.data.cache_dir("pacs", "sft")`` keyed by its config,
seed and code (``sft_code()``; xentlab.data.cache, "The key rule"), so that the SFT unit, PACS and
GRPO of one seed start from the very same weights. ``xentlab.data.build_once`` builds it: a file lock
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

from xentlab.data.arithmetic import (
    ArithmeticConfig,
    ArithmeticTask,
    Problem,
    is_correct,
    make_arithmetic,
    make_validation,
)
from xentlab.data.build_once import build_once
from xentlab.data.cache import atomic_write_json, cache_dir, code_key, source_digest
from xentlab.data.tokenizer import get_byte_tokenizer

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the SFT cache key (xentlab.data.cache, "The key rule")"""


@functools.lru_cache(maxsize=1)
def sft_code() -> str:
    """The code part of ``sft_key``: this module (task, examples, SFT recipe), ``pacs.evaluate`` (the stored
    pass@k), ``xentlab.data.tokenizer`` and the core modules that build, train, sample and score the model
    (``xentlab.lm.code.lm_stack_digests``: the LM stack, the arithmetic generator, pass@k and the rollout
    sampler), the LM loss backend, and the libraries whose numbers end up in the weights and
    metrics. It replaces the hand-bumped ``SFT_VERSION = "1"``, which had to be remembered at every edit of
    that code; a source hash cannot be forgotten."""
    from pacs import evaluate
    from xentlab.data import tokenizer
    from xentlab.lm.code import lm_stack_digests

    core = lm_stack_digests("xentlab.data.arithmetic", "xentlab.metrics.pass_at_k", "xentlab.rl.rollout")
    return code_key(SOURCE_DIGEST, evaluate.SOURCE_DIGEST, tokenizer.SOURCE_DIGEST, *core,
                    libraries=("numpy", "torch", "transformers", "tokenizers"))  # fmt: skip


TASK_SEED = 1234  # one problem set for every run seed: the seeds vary the model, not the data


def build_task(cfg: dict) -> ArithmeticTask:
    return make_arithmetic(ArithmeticConfig(**cfg), TASK_SEED)


def build_validation(cfg: dict, n_val: int) -> list[Problem]:
    """The validation split for the lr selection: ``n_val`` problems in neither the train pool nor
    the held-out split, with the pool's level mix (``xentlab.data.arithmetic.make_validation``)."""
    return make_validation(ArithmeticConfig(**cfg), TASK_SEED, n_val)


def prompt_text(problem: Any) -> str:
    """A bare prompt ``<s>17+5=``: no chat template, so a sequence is ~10 byte tokens instead of ~27
    (the compute of every step scales with it; see the README's deviations)."""
    from xentlab.data.tokenizer import BOS

    return f"{BOS}{problem.question}"


def response_text(problem: Any) -> str:
    """The SFT target: the integer and ``</s>``."""
    from xentlab.data.tokenizer import EOS

    return f"{problem.target}{EOS}"


def sft_examples(tokenizer: Any, problems: list) -> list:
    """Loss on the response tokens only (prompt and response tokenized separately)."""
    from xentlab.lm.train import segments_example

    return [
        segments_example(tokenizer, [(prompt_text(p), False), (response_text(p), True)]) for p in problems
    ]


def prompts_of(problems: list) -> list[str]:
    return [prompt_text(p) for p in problems]


def reward_of(problems: list):
    """The verifiable reward of the rollout loop: 1.0 if the completion's integer is right."""
    answers = [p.answer for p in problems]
    return lambda i, text: float(is_correct(text, answers[i]))


@dataclass
class SFTModel:
    model: Any
    tokenizer: Any
    task: ArithmeticTask
    metrics: dict[str, Any]
    path: Path


def sft_key(cfg: dict, seed: int) -> str:
    """The SFT model's cache name: config, seed, the task seed and the code (``sft_code()``)."""
    blob = json.dumps({"cfg": cfg, "seed": seed, "code": sft_code(), "task_seed": TASK_SEED}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def get_sft(cfg: dict, seed: int, *, log: Any = None) -> SFTModel:
    """Load the cached SFT model of (cfg, seed), or train, evaluate and cache it.

    cfg: {"task": ArithmeticConfig fields, "model": preset, "n_sft" (SFT on the first n_sft problems
    of the train pool), "sft_steps", "sft_batch", "sft_lr", "eval": evaluation settings}.
    The cache entry is a folder ``seed<seed>-<key>/`` with ``model/`` and ``metrics.json``; the model is
    always read back from it, so the unit that trained it and the units that load it use the same weights.
    """
    from pacs.evaluate import evaluate_pass_at_k
    from xentlab.lm.train import LMTrainConfig, fit_lm
    from xentlab.models.tiny_lm import build_tiny_lm, load_tiny_lm, preset, save_tiny_lm
    from xentlab.train.seeding import seed_everything

    tok = get_byte_tokenizer()
    task = build_task(cfg["task"])

    def build(tmp: Path) -> None:
        seed_everything(seed)
        model = build_tiny_lm(preset(cfg["model"], vocab_size=len(tok), max_positions=64), tok, seed=seed)
        n_sft = min(int(cfg["n_sft"]), len(task.train))
        examples = sft_examples(tok, task.train[:n_sft])
        hist = fit_lm(
            model,
            examples,
            LMTrainConfig(steps=cfg["sft_steps"], batch_size=cfg["sft_batch"], lr=cfg["sft_lr"]),
            pad_id=tok.pad_token_id,
            seed=seed,
            on_log=(lambda s, row: log(phase="sft", **row)) if log else None,
        )
        model.eval()
        metrics = evaluate_pass_at_k(model, tok, task.heldout, cfg["eval"], seed=seed)
        metrics["sft_loss"] = hist[-1]["loss"]
        metrics["n_sft"] = n_sft
        save_tiny_lm(model, tmp / "model")
        atomic_write_json(tmp / "metrics.json", metrics)

    # an entry without metrics.json is a folder an older version left half-written: rebuilt
    path = build_once(cache_dir("pacs", "sft") / f"seed{seed}-{sft_key(cfg, seed)}", build,
                      valid=lambda p: (p / "metrics.json").exists())  # fmt: skip
    model = load_tiny_lm(path / "model")
    return SFTModel(model, tok, task, json.loads((path / "metrics.json").read_text()), path)
