"""The two training objectives of the paper on one in-batch score matrix: InfoNCE (Eq. 4) and MW (Eq. 3).

Batch layout (Sec. 4, "how this loss is approximated within one batch"): B queries q_i, their relevant
passages p_i^+ and H hard negatives per query. Every query is scored against every passage of the
batch, so ``scores`` is (B, N) with N = B(1 + H) columns, already divided by the temperature:
``scores[i, c] = cos(E(q_i), E(doc_c)) / tau``. ``pos_index[i]`` is the column of q_i's relevant
passage and ``neg_mask[i, c]`` marks the columns that are negatives for q_i: S_i^- in the paper's
notation (every other passage of the batch; our data can put the same passage in two columns, e.g. two
queries of one concept, so the mask, not the layout, says what is negative).

* InfoNCE / Contrastive Loss, Eq. (4):
      L_CL = -(1/B) sum_i log( e^{s_i^+} / (e^{s_i^+} + sum_{s in S_i^-} e^{s}) ).
* MW loss, Eq. (3), with the temperature of Lemma 2 (l_BCE(z) = log(1 + e^{-z/tau})):
      L_MW = -(1/B) sum_i sum_{s_k^- in S^-} log sigma(s_i^+ - s_k^-),   S^- = union_i S_i^-,
  i.e. every positive of the batch is compared with every negative of the batch, including the
  negatives of *other* queries ("two random (potentially distinct) queries are sampled (q1, q2)",
  Eq. 2). This is ``pairing="global"``, the paper's loss. ``pairing="per_query"`` is the ablation that
  compares s_i^+ only with its own row S_i^- (a RankNet-style within-query pairwise loss; the paper
  contrasts itself with such query-conditioned pairs, Sec. 2).

-log sigma(x) = softplus(-x), so each pair costs softplus(s_k^- - s_i^+) (numerically stable).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PAIRINGS = ("global", "per_query")
REDUCTIONS = ("paper", "mean")


def _check(scores: torch.Tensor, pos_index: torch.Tensor, neg_mask: torch.Tensor) -> None:
    if scores.ndim != 2:
        raise ValueError(f"scores must be (B, N), got shape {tuple(scores.shape)}")
    b, n = scores.shape
    if pos_index.shape != (b,) or pos_index.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"pos_index must be an integer (B,) tensor with B={b}, got {tuple(pos_index.shape)}")
    if b and (int(pos_index.min()) < 0 or int(pos_index.max()) >= n):
        raise ValueError(f"pos_index out of range [0, {n})")
    if neg_mask.shape != (b, n) or neg_mask.dtype != torch.bool:
        raise ValueError(
            f"neg_mask must be a bool (B, N) tensor, got {neg_mask.dtype} {tuple(neg_mask.shape)}"
        )
    if bool(neg_mask.gather(1, pos_index[:, None]).any()):
        raise ValueError("a query's positive column is also marked as its negative")
    if not bool(neg_mask.any()):
        raise ValueError("no negatives in the batch")


def positive_scores(scores: torch.Tensor, pos_index: torch.Tensor) -> torch.Tensor:
    """s_i^+ for every query, shape (B,)."""
    return scores.gather(1, pos_index[:, None]).squeeze(1)


def info_nce_loss(scores: torch.Tensor, pos_index: torch.Tensor, neg_mask: torch.Tensor) -> torch.Tensor:
    """Eq. (4): mean over queries of -log softmax over {s_i^+} and the query's own negatives S_i^-."""
    _check(scores, pos_index, neg_mask)
    keep = neg_mask.clone()
    keep.scatter_(1, pos_index[:, None], True)  # the denominator: the positive and the row's negatives
    logits = scores.masked_fill(~keep, float("-inf"))
    return (torch.logsumexp(logits, dim=1) - positive_scores(scores, pos_index)).mean()


def mw_loss(
    scores: torch.Tensor,
    pos_index: torch.Tensor,
    neg_mask: torch.Tensor,
    *,
    pairing: str = "global",
    reduction: str = "paper",
) -> torch.Tensor:
    """The Mann-Whitney loss, Eq. (3), on temperature-scaled scores.

    ``pairing="global"`` (the paper): every s_i^+ against every negative score of the batch.
    ``pairing="per_query"``: s_i^+ only against its own row's negatives S_i^-.
    ``reduction="paper"``: Eq. (3)'s normalisation, (1/B) * sum over all compared pairs.
    ``reduction="mean"``: the mean over compared pairs, the batch estimate of Lemma 2's expectation
    L_MW[s] (what the bound AoC <= L_MW / ln 2 is about). The two differ by a constant factor per
    batch shape; with Adam(W) that factor does not change the update (Adam is invariant to a constant
    loss scale up to its epsilon).
    """
    _check(scores, pos_index, neg_mask)
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    pos = positive_scores(scores, pos_index)  # (B,)
    if pairing == "global":
        neg = scores[neg_mask]  # S^-: the pooled multiset of every query's negatives, (M,)
        pair_loss = F.softplus(neg[None, :] - pos[:, None])  # (B, M): softplus(s_k^- - s_i^+)
        total, n_pairs = pair_loss.sum(), pair_loss.numel()
    else:
        pair_loss = F.softplus(scores - pos[:, None])  # (B, N); only the row's negatives count
        pair_loss = pair_loss * neg_mask
        total, n_pairs = pair_loss.sum(), int(neg_mask.sum())
    return total / scores.shape[0] if reduction == "paper" else total / n_pairs


def compute_loss(name: str, scores: torch.Tensor, pos_index: torch.Tensor, neg_mask: torch.Tensor):
    """Dispatch by arm name: ``infonce`` | ``mw_global`` | ``mw_per_query``."""
    if name == "infonce":
        return info_nce_loss(scores, pos_index, neg_mask)
    if name == "mw_global":
        return mw_loss(scores, pos_index, neg_mask, pairing="global")
    if name == "mw_per_query":
        return mw_loss(scores, pos_index, neg_mask, pairing="per_query")
    raise ValueError(f"unknown loss {name!r}; use infonce | mw_global | mw_per_query")


def pairwise_aoc(
    scores: torch.Tensor, pos_index: torch.Tensor, neg_mask: torch.Tensor, *, pairing: str = "global"
):
    """The empirical AoC of the same (positive, negative) pairs that ``mw_loss`` compares:
    the fraction of pairs with s^+ <= s^- (Lemma 2 counts a tie as an error: 1{z <= 0})."""
    _check(scores, pos_index, neg_mask)
    pos = positive_scores(scores, pos_index)
    if pairing == "global":
        neg = scores[neg_mask]
        return (pos[:, None] <= neg[None, :]).double().mean()
    if pairing == "per_query":
        wrong = (scores >= pos[:, None]) & neg_mask
        return wrong.sum().double() / neg_mask.sum()
    raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
