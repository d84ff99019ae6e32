"""The Plackett-Luce likelihood of a ranking, the building block of list-wise ranking losses.

Under the Plackett-Luce model (Plackett 1975; Luce 1959) a ranking pi of items with scores s is drawn
by picking the first item with probability softmax(s), the next among those left, and so on:

    log P(pi | s) = sum_k [ s_{pi_k} - log sum_{j >= k} exp(s_{pi_j}) ]

ListMLE (Xia et al., 2008) is its negative; PLD (pld) weights the positions by teacher confidence and
CPRD (cprd) keeps only the valid prefix of a teacher's partial ranking. Each term needs the
log-sum-exp of a suffix of the ranked scores, which a reversed ``logcumsumexp`` gives for every k in
one pass.
"""

from __future__ import annotations

import torch


def plackett_luce_log_probs(ranked: torch.Tensor) -> torch.Tensor:
    """Per-position log-probabilities s_k - log sum_{j >= k} exp(s_j) for scores already listed in
    rank order along the last dimension (best first); the sum over positions is log P(ranking)."""
    suffix_lse = torch.logcumsumexp(ranked.flip(-1), dim=-1).flip(-1)
    return ranked - suffix_lse
