"""ROUGE-L as the official notebook scores a generation against the gold answer.

The notebook calls ``evaluate.load("rouge").compute(predictions=[g], references=[a],
use_stemmer=True)["rougeL"]``, which for one pair is rouge-score's ROUGE-L F-measure with the
Porter stemmer: F = 2 P R / (P + R), P = LCS / |prediction|, R = LCS / |reference| over
lower-cased alphanumeric tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure of ``prediction`` against ``reference`` (0 when either is empty)."""
    return float(_scorer().score(reference, prediction)["rougeL"].fmeasure)


def rouge_l_many(predictions: Sequence[str], reference: str) -> list[float]:
    """ROUGE-L of many predictions against one reference; repeated predictions are scored once
    (samples of a nearly deterministic model repeat a lot)."""
    cache: dict[str, float] = {}
    out = []
    for p in predictions:
        if p not in cache:
            cache[p] = rouge_l(p, reference)
        out.append(cache[p])
    return out
