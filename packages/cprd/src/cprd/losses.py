"""The student's training losses: ITC, and the three distillation terms the arms add to it.

Notation (one direction; the other direction applies the same function to the transposed matrices):
``s`` is the student's in-batch similarity matrix (row i = anchor i, column j = candidate j; the
diagonal is the positive), ``t`` the teacher's cross-encoder ITM logits for the same pairs.

* ``itc_loss``: symmetric InfoNCE over the in-batch similarity matrix divided by the temperature
  (CLIP / ALBEF image-text contrastive loss; the dual encoder's own training loss in the paper).
* ``kl_distill_loss``: vanilla logit distillation, KL(softmax(t / T) || softmax(s / tau)) per row
  (the "logit distillation" baseline of the paper's Sec. 3, finding 1).
* ``partial_ranking_loss``: CPRD (Sec. 4). For each anchor: mine the top-K negatives by *student*
  similarity, sort them by *teacher* score (c_1 .. c_K, teacher-descending), mark as valid those
  whose teacher score is at least ``valid_threshold`` (they form a prefix c_1 .. c_{J*-1} after the
  sort; J* is the first invalid one), and impose the teacher's order with a contrastive,
  Plackett-Luce / ListMLE-like objective::

      L_i = - sum_{j < J*} log( exp(s_{i,c_j} / tau) / sum_{k=j}^{K} exp(s_{i,c_k} / tau) )

  Each valid negative plays the "positive" of a contrastive term against the negatives the teacher
  ranks below it, so the term has the same softmax-over-similarities form as ITC (the paper's
  "coordination" with the dual encoder's contrastive loss). Invalid (easy) negatives appear only
  in denominators: their mutual order is not imposed (finding 2: only hard-negative order carries
  knowledge). With K = all negatives and no validity cut this is ListMLE over the full list
  (``full_list=True``), the "full ranking" arm.

  The formula follows a third-party summary of the paper; K, tau, the validity criterion and the
  loss weight are **unverified** (no official code): see the package README.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xentlab.data.cache import source_digest
from xentlab.losses.plackett_luce import plackett_luce_log_probs

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the teacher cache key (``cprd.experiment.teacher_code``)"""

NEG = -1e4  # a finite "minus infinity": exp(NEG) == 0 in float32/64, and NEG - NEG is not NaN


def itc_loss(s: torch.Tensor, tau: torch.Tensor | float) -> torch.Tensor:
    """Symmetric in-batch InfoNCE: mean of CE(s / tau, diag) over rows and over columns."""
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"itc_loss needs a square similarity matrix, got {tuple(s.shape)}")
    logits = s / tau
    target = torch.arange(len(s), device=s.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def kl_distill_loss(s: torch.Tensor, t: torch.Tensor, tau, teacher_temp: float = 1.0) -> torch.Tensor:
    """Row-wise KL(p_teacher || p_student) with p = softmax over the whole in-batch row, mean over rows.

    p_teacher = softmax(t / teacher_temp), p_student = softmax(s / tau). Call once per direction.
    """
    if s.shape != t.shape:
        raise ValueError(
            f"student and teacher matrices differ in shape: {tuple(s.shape)} vs {tuple(t.shape)}"
        )
    log_p_s = F.log_softmax(s / tau, dim=-1)
    log_p_t = F.log_softmax(t.detach() / teacher_temp, dim=-1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()


def partial_ranking_loss(
    s: torch.Tensor,
    t: torch.Tensor,
    tau,
    *,
    k: int | None,
    valid_threshold: float | None,
    negatives: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """CPRD's contrastive partial ranking term for one direction (module docstring), mean over anchors.

    Args:
        s: n x m student similarities (anchors x candidates), differentiable.
        t: n x m teacher scores for the same pairs (no gradient flows into them).
        tau: the contrastive temperature (the student's ITC temperature).
        k: how many hard negatives to mine per anchor by student similarity (None: all negatives,
            i.e. the full list).
        valid_threshold: a negative is valid when its teacher score is >= this (None: all valid).
        negatives: n x m bool, which candidates are negatives of each anchor (default: off-diagonal).

    Returns the loss and stats (mean number of valid negatives per anchor, fraction of anchors with
    at least one valid negative).
    """
    if s.shape != t.shape or s.ndim != 2:
        raise ValueError(f"need two equal 2-D matrices, got {tuple(s.shape)} and {tuple(t.shape)}")
    n, m = s.shape
    if negatives is None:
        if n != m:
            raise ValueError("pass `negatives` for a non-square matrix")
        negatives = ~torch.eye(n, dtype=torch.bool, device=s.device)
    t = t.detach()
    n_neg = int(negatives.sum(1).max())
    kk = n_neg if k is None else min(k, n_neg)
    if kk < 1:
        raise ValueError("no negatives to rank")
    # 1) mine the top-K negatives by the student's similarity (selection only: no gradient)
    mine = s.detach().masked_fill(~negatives, float("-inf"))
    idx = mine.topk(kk, dim=1).indices  # n x K
    is_neg = negatives.gather(1, idx)  # False where a row had fewer than K negatives
    s_k, t_k = s.gather(1, idx), t.gather(1, idx)
    # 2) the teacher's partial ranking: sort the mined negatives by teacher score, descending
    t_sort_key = t_k.masked_fill(~is_neg, float("-inf"))
    order = t_sort_key.argsort(dim=1, descending=True)
    s_sorted = s_k.gather(1, order)
    t_sorted = t_k.gather(1, order)
    neg_sorted = is_neg.gather(1, order)
    # 3) validity: the prefix c_1 .. c_{J*-1} whose teacher score clears the threshold
    valid = neg_sorted.clone()
    if valid_threshold is not None:
        valid &= t_sorted >= valid_threshold
    # 4) -log( exp(z_j) / sum_{k >= j} exp(z_k) ), z = s / tau: the Plackett-Luce term of each position
    #    (xentlab.losses.plackett_luce). Non-negatives never enter a sum.
    z = torch.where(neg_sorted, s_sorted / tau, torch.full_like(s_sorted, NEG))
    terms = torch.where(valid, -plackett_luce_log_probs(z), torch.zeros_like(z))
    loss = terms.sum(1).mean()
    n_valid = valid.sum(1).float()
    return loss, {
        "valid_per_anchor": float(n_valid.mean()),
        "frac_with_valid": float((n_valid > 0).float().mean()),
    }
