"""Procedural vulnerable / repaired function pairs in a small Python subset.

The paper's premise (Sec. 1 of arXiv 2401.07031): a security repair differs from the vulnerable
code by only 1-2 added lines (a null check, a sanitiser), so cross-entropy fine-tuning is
dominated by the copied functional tokens. Each generated pair reproduces that shape: a short
function with randomised names and benign lines, one injected vulnerability, and a reference fix
that inserts the guard right before the dangerous line and changes nothing else.

Patterns (the "fix rule" of each; ``checker.has_guard`` decides them):

    null    ``w = v.field`` after ``v = fetch(..)``          guard ``if v is None:`` / ``return None``
    sql     ``q = "SELECT .." + p`` then ``db.execute(q)``   guard ``p = escape(p)`` (one line)
    bounds  ``w = arr[i]``                                   guard ``if i >= len(arr):`` / ``return None``
    eval    ``w = eval(s)``                                  guard ``if not is_safe(s):`` / ``return None``

The code is valid Python, so the PyPI CodeBLEU parses it with the tree-sitter Python grammar. Every
token is written space-separated (``fetch ( key )``, still valid Python) so that the BPE gives an
identifier the same token wherever it occurs: a tiny model then learns to copy it much faster.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PATTERNS = ("null", "sql", "bounds", "eval")
IND = "    "

NAMES = ("user", "item", "key", "data", "idx", "buf", "val", "row", "obj", "res", "name", "path")
FIELDS = ("name", "id", "owner", "size", "email", "token")
TABLES = ("users", "orders", "items", "logs")
VERBS = ("get", "load", "read", "find")


@dataclass(frozen=True)
class Pair:
    """One example. ``guard`` holds the inserted lines (1 or 2), ``danger`` the dangerous line and
    ``var`` the variable the guard must test; ``fixed_lines`` is ``vuln_lines`` with ``guard``
    inserted at index ``insert_at``."""

    pattern: str
    vuln: str
    fixed: str
    guard: tuple[str, ...]
    danger: str
    var: str
    insert_at: int

    @property
    def vuln_lines(self) -> list[str]:
        return self.vuln.splitlines()

    @property
    def fixed_lines(self) -> list[str]:
        return self.fixed.splitlines()


def _benign(rng: random.Random, names: list[str], params: list[str]) -> str:
    """A line that touches no vulnerable operation (the copied "functional" code)."""
    a = rng.choice(names)
    b = rng.choice(params)
    kind = rng.randrange(4)
    if kind == 0:
        return f"{IND}{a} = len ( {b} )"
    if kind == 1:
        return f"{IND}{a} = {b} + {rng.randrange(1, 10)}"
    if kind == 2:
        return f"{IND}log ( {b} )"
    return f"{IND}{a} = str ( {b} )"


def make_pair(rng: random.Random, pattern: str | None = None) -> Pair:
    """One random pair; ``pattern`` None draws one of PATTERNS uniformly."""
    pattern = pattern or rng.choice(PATTERNS)
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    names = rng.sample(NAMES, 6)
    p1, p2, v, w, x, q = names
    fname = f"{rng.choice(VERBS)}_{rng.choice(NAMES)}"
    head = f"def {fname} ( {p1} , {p2} ) :"
    pre = [_benign(rng, [x], [p1, p2]) for _ in range(rng.randint(0, 1))]
    if pattern == "null":
        core = [f"{IND}{v} = fetch ( {p1} )", f"{IND}{w} = {v} . {rng.choice(FIELDS)}"]
        danger_i, var = 1, v
        guard = (f"{IND}if {v} is None :", f"{IND}{IND}return None")
    elif pattern == "sql":
        core = [
            f'{IND}{q} = "SELECT * FROM {rng.choice(TABLES)} WHERE id=" + {p1}',
            f"{IND}{w} = db . execute ( {q} )",
        ]
        danger_i, var = 0, p1
        guard = (f"{IND}{p1} = escape ( {p1} )",)
    elif pattern == "bounds":
        core = [f"{IND}{w} = {p2} [ {p1} ]"]
        danger_i, var = 0, p1
        guard = (f"{IND}if {p1} >= len ( {p2} ) :", f"{IND}{IND}return None")
    else:  # eval
        core = [f"{IND}{w} = eval ( {p1} )"]
        danger_i, var = 0, p1
        guard = (f"{IND}if not is_safe ( {p1} ) :", f"{IND}{IND}return None")
    body = pre + core + [f"{IND}return {w}"]
    vuln_lines = [head, *body]
    insert_at = 1 + len(pre) + danger_i
    fixed_lines = vuln_lines[:insert_at] + list(guard) + vuln_lines[insert_at:]
    return Pair(
        pattern=pattern,
        vuln="\n".join(vuln_lines) + "\n",
        fixed="\n".join(fixed_lines) + "\n",
        guard=guard,
        danger=vuln_lines[insert_at],
        var=var,
        insert_at=insert_at,
    )


def make_split(n: int, seed: int) -> list[Pair]:
    """``n`` pairs with the patterns balanced (cycled) and everything else drawn from ``seed``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    return [make_pair(rng, PATTERNS[i % len(PATTERNS)]) for i in range(n)]


def make_dataset(n_train: int, n_dev: int, n_test: int, seed: int) -> dict[str, list[Pair]]:
    """Train / dev / test from disjoint seed streams, with any test or dev function whose
    vulnerable text also occurs in train dropped from train (no leakage by duplication)."""
    test = make_split(n_test, seed * 3 + 2)
    dev = make_split(n_dev, seed * 3 + 1)
    held = {p.vuln for p in test} | {p.vuln for p in dev}
    train = [p for p in make_split(n_train, seed * 3) if p.vuln not in held]
    return {"train": train, "dev": dev, "test": test}
