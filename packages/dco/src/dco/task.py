"""The cpu-scale task: direct-answer arithmetic ``a+f*b`` (1-digit addend, 1-digit factor, 2-digit
operand; ``xentlab.data.arithmetic`` level 4 with ``min_operand=10, max_addend=9``), a byte-level
tokenizer, and the prompt / answer strings.

The problem pool is drawn once (``TASK_SEED``; the run seeds vary the model, not the data) with
``pool_train`` train problems and ``n_test`` test problems; a run trains on the first ``n_train``
problems of the train pool, so the test split is the same whatever ``n_train`` is. The validation
split (for choosing ``n_train``; ``dco.select_ntrain``) is disjoint from both
(``xentlab.data.arithmetic.make_validation``).

A sequence is ``<s>7+6*43=`` (prompt) + ``265</s>`` (answer): one token per character, so the
answer has one canonical token sequence and p_hat(y|x) is the probability of exactly these
tokens, EOS included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xentlab.data.arithmetic import ArithmeticConfig, Problem, make_arithmetic, make_validation

TASK_SEED = 1234
# a 2-digit x 1-digit product plus a 1-digit addend: "7+6*43=265" (9,000 distinct expressions)
FAMILY = {
    "max_operand": 99,
    "min_operand": 10,
    "max_addend": 9,
    "max_factor": 9,
    "level_weights": (0, 0, 0, 1),
}


@dataclass(frozen=True)
class TaskSplits:
    train: list[Problem]
    test: list[Problem]
    val: list[Problem]


def arithmetic_config(pool_train: int, n_test: int) -> ArithmeticConfig:
    return ArithmeticConfig(n_train=pool_train, n_heldout=n_test, **FAMILY)


def build_splits(cfg: dict) -> TaskSplits:
    """cfg: {"pool_train", "n_train" (<= pool_train), "n_test", "n_val" (0: none)}."""
    if cfg["n_train"] > cfg["pool_train"]:
        raise ValueError(f"n_train={cfg['n_train']} exceeds the train pool ({cfg['pool_train']})")
    acfg = arithmetic_config(cfg["pool_train"], cfg["n_test"])
    task = make_arithmetic(acfg, TASK_SEED)
    val = make_validation(acfg, TASK_SEED, cfg["n_val"]) if cfg.get("n_val") else []
    return TaskSplits(train=task.train[: cfg["n_train"]], test=task.heldout, val=val)


def prompt_text(question: str) -> str:
    from xentlab.data.tokenizer import BOS

    return f"{BOS}{question}"


def answer_text(answer: str) -> str:
    from xentlab.data.tokenizer import EOS

    return f"{answer}{EOS}"


def examples(tokenizer: Any, pairs: list[tuple[str, str]]) -> list:
    """(question, answer) -> ``xentlab.lm.train.Example`` with the loss mask on the answer and EOS."""
    from xentlab.lm.train import segments_example

    return [segments_example(tokenizer, [(prompt_text(q), False), (answer_text(a), True)]) for q, a in pairs]


def problem_pairs(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.question, p.target) for p in problems]
