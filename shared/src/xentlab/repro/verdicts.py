"""Deciding a claim's verdict from per-seed values: holds, fails or inconclusive."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

from xentlab.metrics.bootstrap import summarize
from xentlab.repro.spec import Claim

HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq}


def evaluate_claim(claim: Claim, per_seed: Sequence[float | None]) -> dict:
    """The claim's record for result.json: value, CI, verdict and a reason for that verdict."""
    record = {
        "id": claim.id,
        "statement": claim.statement,
        "paper": claim.paper,
        "metric": claim.metric,
        "check": claim.check if claim.agg != "all" else "true for every seed",
        "agg": claim.agg,
        "note": claim.note,
    }
    values = [v for v in per_seed if v is not None]
    if not values:
        return {
            **record,
            "value": None,
            "ci95": None,
            "n": 0,
            "verdict": INCONCLUSIVE,
            "reason": "metric not measured at this scale",
        }
    if len(values) < len(per_seed) or any(isinstance(v, float) and math.isnan(v) for v in values):
        return {
            **record,
            "value": None,
            "ci95": None,
            "n": len(per_seed),
            "verdict": INCONCLUSIVE,
            "reason": "some seeds gave no finite value",
        }
    op, thr = claim.op_threshold
    cmp = _OPS[op]
    if claim.agg == "all":
        ok = [bool(v) for v in values]
        verdict = HOLDS if all(ok) else FAILS
        return {
            **record,
            "value": sum(ok) / len(ok),
            "ci95": None,
            "n": len(ok),
            "verdict": verdict,
            "reason": f"{sum(ok)}/{len(ok)} seeds",
        }
    if claim.agg in ("min", "max"):
        value = min(values) if claim.agg == "min" else max(values)
        verdict = HOLDS if cmp(value, thr) else FAILS
        return {
            **record,
            "value": value,
            "ci95": None,
            "n": len(values),
            "verdict": verdict,
            "reason": f"{claim.agg} over {len(values)} seeds",
        }
    s = summarize(values)
    lo, hi = s["ci95"]
    checks = [cmp(s["mean"], thr), cmp(lo, thr), cmp(hi, thr)]
    if all(checks):
        verdict, reason = HOLDS, "mean and whole 95% CI satisfy the check"
    elif not any(checks):
        verdict, reason = FAILS, "mean and whole 95% CI violate the check"
    else:
        verdict, reason = INCONCLUSIVE, "the 95% CI straddles the threshold"
    if s["n"] == 1:
        reason += " (one seed: no interval)"
    return {
        **record,
        "value": s["mean"],
        "ci95": [lo, hi],
        "std": s["std"],
        "n": s["n"],
        "verdict": verdict,
        "reason": reason,
    }
