"""The training-budget rule: choose the episode count on meta-validation curves only (never on test).

The paper trains to convergence with the checkpoint chosen on meta-validation; the cpu scale cannot afford
an open-ended run, so a pilot (``scripts/select_budget.py``) trains pilot seeds up to the largest
candidate budget, and this rule picks the smallest candidate at which the meta-val curve has plateaued:
the best of the last ``k`` evaluations up to that budget is within ``delta`` points of the best evaluation
of the whole pilot curve. Each curve gets its own budget; the chosen budget is the largest over the curves
(the slowest pilot decides). The largest candidate always satisfies the rule (it contains the overall best),
so the rule always returns a candidate: that candidate is the compute cap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def plateau_budget(
    episodes: Sequence[int], val: Sequence[float], candidates: Sequence[int], k: int, delta: float
) -> int:
    """The smallest candidate B with max(val of the last k evaluations at episode <= B) >= best - delta.

    episodes / val: one meta-val curve (evaluation episode, accuracy in %), increasing episodes; it must
    reach the largest candidate. best = the best evaluation at episode <= max(candidates).
    """
    if len(episodes) != len(val) or not episodes:
        raise ValueError("episodes and val must be non-empty and of equal length")
    if any(b <= a for a, b in zip(episodes, episodes[1:])):
        raise ValueError("episodes must be strictly increasing")
    if k < 1 or not (math.isfinite(delta) and delta >= 0):
        raise ValueError(f"need k >= 1 and a finite delta >= 0, got k={k}, delta={delta}")
    cands = sorted(candidates)
    if not cands or episodes[-1] < cands[-1]:
        raise ValueError(
            f"the curve ends at episode {episodes[-1]}, before the largest candidate {cands[-1]}"
        )
    best = max(v for e, v in zip(episodes, val) if e <= cands[-1])
    for budget in cands:
        upto = [v for e, v in zip(episodes, val) if e <= budget]
        if upto and max(upto[-k:]) >= best - delta:
            return budget
    return cands[-1]  # unreachable: the largest candidate's window holds `best` or a value >= it


def seeds_for_budget(budget: int, cpu_budget_s: float, cpu_s_per_seed_per_episode: float, min_seeds: int,
                     max_seeds: int) -> int:  # fmt: skip
    """How many seeds fit the cpu-run budget: floor(cpu_budget_s / (cost per seed at `budget`)), clipped."""
    n = math.floor(cpu_budget_s / (cpu_s_per_seed_per_episode * budget))
    return int(min(max_seeds, max(min_seeds, n)))
