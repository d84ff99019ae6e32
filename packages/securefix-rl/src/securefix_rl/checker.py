"""Decide whether a generated repair contains the security measure (the paper's "security-measure
inclusion"), whether it kept the functional code, and whether it is an exact match.

``has_guard`` is the inclusion metric. It reads the repair on its own terms: it finds the
dangerous operation of the pair's vulnerability pattern in the generated code (by its shape,
e.g. ``W = eval ( S )``), takes the variable that operation uses *there*, and asks whether the
pattern's guard on that variable occurs above it (both lines of a two-line guard, in order). So
a repair that guards the operation it actually performs counts, even when it miscopied an
unrelated name; a repair without the dangerous operation is no repair and fails.
``has_exact_guard`` is the strict variant: the reference's guard lines and the reference's
dangerous line, verbatim up to whitespace.

Lines are compared after whitespace normalisation, so formatting never decides a verdict.
The checker is an evaluation metric only: the RL reward never calls it (``reward.py`` has it as
a labelled ablation).
"""

from __future__ import annotations

import re

from securefix_rl.lang import Pair

_ID = r"([A-Za-z_]\w*)"
# the dangerous operation of each pattern (on a whitespace-normalised line) and the group that
# holds the variable the guard must test; bounds also needs the array (group 2)
DANGER = {
    "null": (re.compile(rf"^{_ID} = {_ID} \. {_ID}$"), 2),
    "sql": (re.compile(rf'^{_ID} = "SELECT .*" \+ {_ID}$'), 2),
    "bounds": (re.compile(rf"^{_ID} = {_ID} \[ {_ID} \]$"), 3),
    "eval": (re.compile(rf"^{_ID} = eval \( {_ID} \)$"), 2),
}


def norm(line: str) -> str:
    return " ".join(line.split())


def _lines(code: str) -> list[str]:
    return [norm(x) for x in code.splitlines() if x.strip()]


def _guard_lines(pattern: str, m: re.Match) -> tuple[str, ...]:
    if pattern == "null":
        return (f"if {m.group(2)} is None :", "return None")
    if pattern == "sql":
        return (f"{m.group(2)} = escape ( {m.group(2)} )",)
    if pattern == "bounds":
        return (f"if {m.group(3)} >= len ( {m.group(2)} ) :", "return None")
    return (f"if not is_safe ( {m.group(2)} ) :", "return None")


def _guard_above(lines: list[str], d: int, guard: tuple[str, ...]) -> bool:
    for i in range(d):
        if lines[i] == guard[0] and (len(guard) == 1 or (i + 1 < d and lines[i + 1] == guard[1])):
            return True
    return False


def has_guard(code: str, pair: Pair) -> bool:
    """True iff the first dangerous operation of ``pair.pattern`` in ``code`` has its guard (on the
    variable it uses) somewhere above it."""
    rx, _ = DANGER[pair.pattern]
    lines = _lines(code)
    for d, line in enumerate(lines):
        m = rx.match(line)
        if m:
            return _guard_above(lines, d, _guard_lines(pair.pattern, m))
    return False


def has_exact_guard(code: str, pair: Pair) -> bool:
    """Strict: the reference's guard lines above the reference's (verbatim) dangerous line."""
    lines = _lines(code)
    danger = norm(pair.danger)
    if danger not in lines:
        return False
    return _guard_above(lines, lines.index(danger), tuple(norm(g) for g in pair.guard))


def preserves_function(code: str, pair: Pair) -> bool:
    """The non-security lines equal the vulnerable function's, in order (guard lines removed)."""
    guard = {norm(g) for g in pair.guard}
    kept = [x for x in _lines(code) if x not in guard]
    return kept == _lines(pair.vuln)


def exact_match(code: str, pair: Pair) -> bool:
    return _lines(code) == _lines(pair.fixed)
