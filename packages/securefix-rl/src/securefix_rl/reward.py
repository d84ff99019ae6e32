"""The hybrid reward of the paper (Sec. 3): a syntactic term, CodeBLEU(y_hat, y_ref), and a
semantic term, a similarity of y_hat to y_ref (BERTScore in the paper; here the BERTScore-style
F1 of ``semantic.py``):

    r(y_hat) = w_syn * CodeBLEU(y_hat, y_ref) + w_sem * Sem(y_hat, y_ref)

The combination weights are not in the sources we could read; w = 0.5 / 0.5 is an assumption
(README). ``checker_reward`` is the labelled ablation that rewards the security checker directly:
a different method than the paper's, never the default.
"""

from __future__ import annotations

from collections.abc import Sequence

from securefix_rl.checker import has_guard
from securefix_rl.codebleu_score import sentence_codebleu
from securefix_rl.lang import Pair


def hybrid_rewards(
    texts: Sequence[str],
    pairs: Sequence[Pair],
    sem: object,
    *,
    w_syn: float = 0.5,
    w_sem: float = 0.5,
    lang: str = "python",
) -> tuple[list[float], list[float], list[float]]:
    """(rewards, codebleu terms, semantic terms) of completions ``texts`` against the references
    (``pairs``: anything with a ``.fixed`` reference; ``lang``: CodeBLEU's grammar)."""
    if len(texts) != len(pairs):
        raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
    refs = [p.fixed for p in pairs]
    syn = [sentence_codebleu(t, r, lang) for t, r in zip(texts, refs)]
    sm = sem.f1(texts, refs) if w_sem else [0.0] * len(texts)
    return [w_syn * a + w_sem * b for a, b in zip(syn, sm)], syn, sm


def checker_rewards(texts: Sequence[str], pairs: Sequence[Pair]) -> list[float]:
    """Ablation only: 1 if the checker finds the guard, else 0."""
    return [float(has_guard(t, p)) for t, p in zip(texts, pairs)]


def guard_gap(rewards: Sequence[float], guarded: Sequence[bool]) -> float | None:
    """Monitor of the reward's contrast: mean reward of the guarded samples minus that of the
    unguarded ones (None when either group is empty). It reads the checker, so it is logged only;
    the reward never sees it."""
    if len(rewards) != len(guarded):
        raise ValueError(f"{len(rewards)} rewards but {len(guarded)} guard flags")
    yes = [r for r, g in zip(rewards, guarded) if g]
    no = [r for r, g in zip(rewards, guarded) if not g]
    if not yes or not no:
        return None
    return sum(yes) / len(yes) - sum(no) / len(no)
