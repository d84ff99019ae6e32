"""ROUGE-L of a generated answer against a gold answer, as the unlearning benchmarks score it.

Both conventions in use come from Google's ``rouge-score`` with the Porter stemmer (lower-cased
alphanumeric tokens; LCS = longest common subsequence of the two token lists):

* TOFU (``locuslab/tofu``, ``evaluate_util.eval_rouge_recall``) reports the **recall**,
  R = LCS / |reference tokens| (``RougeScorer(["rougeL"], use_stemmer=True).score(gt, gen)
  ["rougeL"].recall``): used by packages/tru at full scale.
* Hugging Face ``evaluate.load("rouge")`` (what the prob-unlearn notebook calls with
  ``use_stemmer=True``) returns the **F-measure** F = 2PR / (P + R), P = LCS / |prediction tokens|.

Every measure is 0 when either text has no token. ``rouge-score`` is imported on first use: the
packages that score with it declare it (it is not one of xentlab's own dependencies).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

MEASURES = ("fmeasure", "precision", "recall")


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, reference: str, *, measure: str = "fmeasure") -> float:
    """ROUGE-L ``measure`` ("fmeasure", "precision" or "recall") of ``prediction`` against ``reference``."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    return float(getattr(_scorer().score(reference, prediction)["rougeL"], measure))


def rouge_l_many(predictions: Sequence[str], reference: str, *, measure: str = "fmeasure") -> list[float]:
    """``rouge_l`` of many predictions against one reference; a repeated prediction is scored once
    (samples of a nearly deterministic model repeat a lot)."""
    cache: dict[str, float] = {}
    out = []
    for p in predictions:
        if p not in cache:
            cache[p] = rouge_l(p, reference, measure=measure)
        out.append(cache[p])
    return out


__all__ = ["MEASURES", "rouge_l", "rouge_l_many"]
