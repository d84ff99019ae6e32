"""Held-out evaluation of a repair model: greedy repairs of the test (or dev) functions, scored by
the checker (security-measure inclusion, functional preservation, exact match), corpus CodeBLEU
and the BERTScore-style semantic F1 under the frozen SFT model."""

from __future__ import annotations

from typing import Any

from securefix_rl.checker import exact_match, has_exact_guard, has_guard, preserves_function
from securefix_rl.codebleu_score import corpus_codebleu
from securefix_rl.lang import PATTERNS, Pair
from securefix_rl.task import prompt_text


def repair(model: Any, tok: Any, pairs: list[Pair], max_new_tokens: int) -> list[str]:
    from xentlab.lm.generate import generate

    return generate(
        model, tok, [prompt_text(p) for p in pairs], max_new_tokens=max_new_tokens, batch_size=100
    ).texts


def evaluate(
    model: Any, tok: Any, pairs: list[Pair], *, max_new_tokens: int, sem: Any = None
) -> dict[str, Any]:
    """Metrics in [0, 1] (rates and scores); per-pattern inclusion too (``sec_<pattern>``)."""
    outs = repair(model, tok, pairs, max_new_tokens)
    sec = [has_guard(o, p) for o, p in zip(outs, pairs)]
    m: dict[str, Any] = {
        "sec_rate": sum(sec) / len(pairs),
        "sec_strict": sum(has_exact_guard(o, p) for o, p in zip(outs, pairs)) / len(pairs),
        "func_rate": sum(preserves_function(o, p) for o, p in zip(outs, pairs)) / len(pairs),
        "exact": sum(exact_match(o, p) for o, p in zip(outs, pairs)) / len(pairs),
    }
    cb = corpus_codebleu(outs, [p.fixed for p in pairs])
    m["codebleu"] = cb["codebleu"]
    m["ngram"] = cb["ngram_match_score"]
    m["syntax"] = cb["syntax_match_score"]
    m["dataflow"] = cb["dataflow_match_score"]
    if sem is not None:
        f = sem.f1(outs, [p.fixed for p in pairs])
        m["sem"] = sum(f) / len(f)
    for pat in PATTERNS:
        idx = [i for i, p in enumerate(pairs) if p.pattern == pat]
        if idx:
            m[f"sec_{pat}"] = sum(sec[i] for i in idx) / len(idx)
    m["example_outputs"] = outs[:4]
    return m
