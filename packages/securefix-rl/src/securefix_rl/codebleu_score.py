"""The syntactic reward term: CodeBLEU (Ren et al. 2020) from the PyPI ``codebleu`` package.

CodeBLEU = 0.25 BLEU + 0.25 keyword-weighted BLEU + 0.25 AST subtree match + 0.25 data-flow match
(the package's and the CodeBLEU paper's default weights), parsed with the tree-sitter Python
grammar, fully offline. The generated functions are valid Python (``lang.py``).

The data-flow part depends on Python's per-process string-hash seed: the package (like the official
CodeBLEU) builds variable lists with ``list(set(...))`` over strings (``dataflow_match.py``,
``get_data_flow`` and ``normalize_dataflow_item``) and then compares them in order. So the securefix
experiment sets ``Experiment(fixed_hash_seed=True)``: every unit runs with ``PYTHONHASHSEED=0``
(README, "Fifth cpu run").
"""

from __future__ import annotations

from collections.abc import Sequence

WEIGHTS = (0.25, 0.25, 0.25, 0.25)


def _calc(preds: list[str], refs: list[str], lang: str = "python") -> dict[str, float]:
    from codebleu import calc_codebleu

    return calc_codebleu(refs, preds, lang=lang, weights=WEIGHTS)


def codebleu_language(requested: str) -> str:
    """``requested`` if ``codebleu`` can build its tree-sitter grammar here, else ``"python"`` (the one
    grammar this workspace pins; ``--scale full`` records which one it used)."""
    from codebleu.utils import get_tree_sitter_language

    try:
        get_tree_sitter_language(requested)
        return requested
    except (AssertionError, ImportError, TypeError, ValueError, AttributeError):
        return "python"


def sentence_codebleu(pred: str, ref: str, lang: str = "python") -> float:
    """CodeBLEU of one prediction against its reference, in [0, 1] (0 for an empty prediction).

    An unparsable or empty prediction can make a component raise or divide by zero inside the
    package; such a sample scores 0 (the worst syntactic reward), never an exception mid-rollout.
    """
    if not pred.strip():
        return 0.0
    try:
        return float(_calc([pred], [ref], lang)["codebleu"])
    except (ZeroDivisionError, ValueError, IndexError):
        return 0.0


def corpus_codebleu(preds: Sequence[str], refs: Sequence[str], lang: str = "python") -> dict[str, float]:
    """Corpus-level CodeBLEU and its four components (the evaluation metric)."""
    if len(preds) != len(refs) or not preds:
        raise ValueError(f"need as many predictions as references (> 0), got {len(preds)} and {len(refs)}")
    safe = [p if p.strip() else "pass" for p in preds]
    return {k: float(v) for k, v in _calc(list(safe), list(refs), lang).items()}
