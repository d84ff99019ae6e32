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

Optional ranges (their defaults reproduce the problems above exactly): ``min_operand`` raises the lower
bound of the operands a and b (e.g. 10: b always has 2 digits), and ``max_addend`` draws level 4's
addend a from 0..max_addend instead. ``ArithmeticConfig(max_operand=99, min_operand=10, max_addend=9,
level_weights=(0, 0, 0, 1))`` is "a 2-digit times 1-digit product plus a 1-digit addend"
(``"7+6*43"``; 9,000 distinct expressions), the direct-answer family of the dco package.

``make_validation(cfg, seed, n_val)`` adds a validation split (for choosing hyperparameters such as
the learning rate without looking at the held-out split): ``n_val`` expressions that are in neither
split of ``make_arithmetic(cfg, seed)``, with the pool's level mix. It draws from its own random
stream, so the train and held-out splits are exactly those of ``make_arithmetic``.
"""

from __future__ import annotations

import random
import re
from collections import Counter
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
    level_weights: relative frequency of levels 1-4 (mixed difficulty).
    min_operand: operands a and b are drawn from min_operand..max_operand (default 0).
    max_addend: when set, level 4's addend a is drawn from 0..max_addend (its other operand b keeps
        min_operand..max_operand); None (default): a is an operand like b."""

    n_train: int = 3000
    n_heldout: int = 500
    max_operand: int = 99
    max_factor: int = 9
    level_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    min_operand: int = 0
    max_addend: int | None = None

    def __post_init__(self) -> None:
        if self.n_train < 0 or self.n_heldout < 0:
            raise ValueError("n_train and n_heldout must be >= 0")
        if self.max_operand < 1 or self.max_factor < 1:
            raise ValueError("max_operand and max_factor must be >= 1")
        if not 0 <= self.min_operand <= self.max_operand:
            raise ValueError("min_operand must be in 0..max_operand")
        if self.max_addend is not None and self.max_addend < 0:
            raise ValueError("max_addend must be >= 0 (or None)")
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


def _addend_range(level: int, cfg: ArithmeticConfig) -> tuple[int, int]:
    """Inclusive range of the first operand a (level 4's addend may have its own, ``max_addend``)."""
    if level == 4 and cfg.max_addend is not None:
        return 0, cfg.max_addend
    return cfg.min_operand, cfg.max_operand


def _draw(level: int, rng: random.Random, cfg: ArithmeticConfig) -> Problem:
    # with the default ranges these are the same randint calls as before the optional ranges existed,
    # so every existing (config, seed) keeps its problems
    a = rng.randint(*_addend_range(level, cfg))
    b = rng.randint(cfg.min_operand, cfg.max_operand)
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
    n, f = cfg.max_operand - cfg.min_operand + 1, cfg.max_factor + 1
    lo, hi = _addend_range(4, cfg)
    per_level = {1: n * n, 2: n * n, 3: 2 * f * n, 4: (hi - lo + 1) * f * n}
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


def _all_problems(level: int, cfg: ArithmeticConfig) -> list[Problem]:
    """Every distinct problem of one level, sorted by expression (the set ``_draw`` samples from)."""
    ops, fs = range(cfg.min_operand, cfg.max_operand + 1), range(cfg.max_factor + 1)
    if level == 1:
        found = [Problem(f"{a}+{b}", a + b, 1) for a in ops for b in ops]
    elif level == 2:
        found = [Problem(f"{a}-{b}", a - b, 2) for a in ops for b in ops]
    elif level == 3:  # "f*b" and "b*f" name the same string when both are <= max_factor
        found = [Problem(e, f * b, 3) for f in fs for b in ops for e in (f"{f}*{b}", f"{b}*{f}")]
    else:
        lo, hi = _addend_range(4, cfg)
        found = [Problem(f"{a}+{f}*{b}", a + f * b, 4) for a in range(lo, hi + 1) for f in fs for b in ops]
    return sorted({p.expr: p for p in found}.values(), key=lambda p: p.expr)


def _quotas(n: int, weights: dict[int, float]) -> dict[int, int]:
    """Split n over the levels in proportion to ``weights`` (largest remainder, ties to the lower level)."""
    total = sum(weights.values())
    exact = {lv: n * w / total for lv, w in weights.items()}
    out = {lv: int(x) for lv, x in exact.items()}
    by_remainder = sorted(weights, key=lambda lv: (-(exact[lv] - out[lv]), lv))
    for lv in by_remainder[: n - sum(out.values())]:
        out[lv] += 1
    return out


def make_validation(cfg: ArithmeticConfig, seed: int, n_val: int) -> list[Problem]:
    """``n_val`` problems disjoint from both splits of ``make_arithmetic(cfg, seed)`` (no shared
    expression), for model selection that never reads the held-out split.

    Level mix: the pool's (train + held-out) level counts, split over ``n_val`` by largest remainder,
    so that a validation pass@1 is comparable with a held-out one. The pool's mix, not
    ``level_weights``: with small operands the easy levels run out of distinct expressions and the
    pool holds fewer of them than the weights ask. Inside a level the problems are a uniform sample
    of the expressions that the pool does not use. Raises ValueError when a level has too few left.
    """
    if n_val < 0:
        raise ValueError("n_val must be >= 0")
    task = make_arithmetic(cfg, seed)
    pool = task.train + task.heldout
    used = {p.expr for p in pool}
    counts = Counter(p.level for p in pool)
    weights = (
        {lv: float(counts[lv]) for lv in LEVELS}
        if pool
        else {lv: float(w) for lv, w in zip(LEVELS, cfg.level_weights)}
    )
    rng = random.Random(f"arithmetic-validation|{seed}")  # its own stream: the splits above are untouched
    problems: list[Problem] = []
    for level, quota in _quotas(n_val, weights).items():
        if quota == 0:
            continue
        free = [p for p in _all_problems(level, cfg) if p.expr not in used]
        if len(free) < quota:
            raise ValueError(
                f"level {level}: {quota} validation problems requested but only {len(free)} distinct "
                "expressions are left outside the train and held-out splits (lower n_val)"
            )
        problems.extend(rng.sample(free, quota))
    rng.shuffle(problems)
    return problems


def parse_answer(completion: str) -> int | None:
    """The first integer of a completion (leading spaces allowed), or None when it does not start
    with one. ``" -12 apples"`` -> -12; ``"12abc"`` -> 12; ``"abc 12"`` -> None; ``"- 3"`` -> None."""
    m = _INT.match(completion)
    return int(m.group(1)) if m else None


def is_correct(completion: str, answer: int) -> bool:
    """Verifiable reward: the completion's first integer equals ``answer``."""
    value = parse_answer(completion)
    return value is not None and value == int(answer)
