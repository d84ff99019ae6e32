"""Procedurally generated arithmetic with verifiable integer answers, for RLVR-style experiments.

Each problem is an expression over non-negative operands of 1-2 digits (``max_operand``) with one
difficulty level:

    level 1  a+b        e.g. "7+45"
    level 2  a-b        e.g. "12-58"  (answers may be negative)
    level 3  a*b        e.g. "6*17"   (one operand has 1 digit, so answers stay <= 3 digits)
    level 4  a+b*c      e.g. "23+4*9" (usual precedence: the product first)

The question is ``"{expr}="`` and the expected completion is just the integer (``"52"``, ``"-46"``),
as the chat format writes it: ``chat_prompt("7+45=")`` -> `` 52</s>``. ``is_correct`` parses the
first integer of a completion (an optional minus sign and digits, possibly after spaces), so
trailing text after the number is ignored, and a completion that does not start with a number
(text before it, or no number at all) is wrong: the model must answer with the integer.

``make_arithmetic(cfg, seed)`` draws ``n_train + n_heldout`` *distinct* expressions (no
expression string appears twice in the pool, so none is in both splits), mixing the levels with
``level_weights``; the same (config, seed) gives the same problems on every machine.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

LEVELS = (1, 2, 3, 4)
_INT = re.compile(r"^\s*(-?\d+)")


@dataclass(frozen=True)
class Problem:
    """One problem: the expression, its integer answer and difficulty level (1-4)."""

    expr: str
    answer: int
    level: int

    @property
    def question(self) -> str:
        """The text the model sees as the user turn."""
        return f"{self.expr}="

    @property
    def target(self) -> str:
        """The reference completion: just the integer."""
        return str(self.answer)


@dataclass(frozen=True)
class ArithmeticConfig:
    """n_train / n_heldout: problems in the train pool and the held-out split (disjoint).
    max_operand: operands are drawn uniformly from 0..max_operand (99: 1-2 digits).
    max_factor: the 1-digit side of a product (levels 3 and 4) is drawn from 0..max_factor.
    level_weights: relative frequency of levels 1-4 (mixed difficulty)."""

    n_train: int = 3000
    n_heldout: int = 500
    max_operand: int = 99
    max_factor: int = 9
    level_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if self.n_train < 0 or self.n_heldout < 0:
            raise ValueError("n_train and n_heldout must be >= 0")
        if self.max_operand < 1 or self.max_factor < 1:
            raise ValueError("max_operand and max_factor must be >= 1")
        if (
            len(self.level_weights) != len(LEVELS)
            or min(self.level_weights) < 0
            or sum(self.level_weights) <= 0
        ):
            raise ValueError(f"level_weights needs {len(LEVELS)} non-negative weights with a positive sum")


@dataclass(frozen=True)
class ArithmeticTask:
    """The train pool and the held-out split (no expression in both)."""

    train: list[Problem] = field(default_factory=list)
    heldout: list[Problem] = field(default_factory=list)


def _draw(level: int, rng: random.Random, cfg: ArithmeticConfig) -> Problem:
    a = rng.randint(0, cfg.max_operand)
    b = rng.randint(0, cfg.max_operand)
    if level == 1:
        return Problem(f"{a}+{b}", a + b, 1)
    if level == 2:
        return Problem(f"{a}-{b}", a - b, 2)
    f = rng.randint(0, cfg.max_factor)
    if level == 3:
        expr = f"{f}*{b}" if rng.random() < 0.5 else f"{b}*{f}"
        return Problem(expr, f * b, 3)
    return Problem(f"{a}+{f}*{b}", a + f * b, 4)


def capacity(cfg: ArithmeticConfig) -> int:
    """An upper bound on the distinct expressions of the levels with positive weight."""
    n, f = cfg.max_operand + 1, cfg.max_factor + 1
    per_level = {1: n * n, 2: n * n, 3: 2 * f * n, 4: n * f * n}
    return sum(per_level[lv] for lv, w in zip(LEVELS, cfg.level_weights) if w > 0)


def make_arithmetic(cfg: ArithmeticConfig, seed: int) -> ArithmeticTask:
    """Draw distinct problems (rejecting repeated expressions) and split them into train / held out."""
    total = cfg.n_train + cfg.n_heldout
    if total > capacity(cfg) // 2:  # keep rejection sampling fast and the mix close to the weights
        raise ValueError(f"{total} problems requested but only ~{capacity(cfg)} distinct expressions exist")
    rng = random.Random(f"arithmetic|{seed}")
    seen: set[str] = set()
    problems: list[Problem] = []
    while len(problems) < total:
        level = rng.choices(LEVELS, weights=cfg.level_weights)[0]
        p = _draw(level, rng, cfg)
        if p.expr in seen:
            continue
        seen.add(p.expr)
        problems.append(p)
    # levels that run out of distinct expressions stop being drawn late in the loop: shuffle so
    # that both splits get the same level mix in expectation
    rng.shuffle(problems)
    return ArithmeticTask(train=problems[cfg.n_heldout :], heldout=problems[: cfg.n_heldout])


def parse_answer(completion: str) -> int | None:
    """The first integer of a completion (leading spaces allowed), or None when it does not start
    with one. ``" -12 apples"`` -> -12; ``"12abc"`` -> 12; ``"abc 12"`` -> None; ``"- 3"`` -> None."""
    m = _INT.match(completion)
    return int(m.group(1)) if m else None


def is_correct(completion: str, answer: int) -> bool:
    """Verifiable reward: the completion's first integer equals ``answer``."""
    value = parse_answer(completion)
    return value is not None and value == int(answer)
