"""The EMO loss (paper Sec. 3; official code: DRSY/EMO ``emo_patch.py`` and ``language_modeling/gpt2.py``).

Notation. Per token t: target y, model distribution q = softmax(logits_t) over V words, and a FROZEN
cost embedding E (V x d) = the LM-head weights of the model right after its pretrained weights are
loaded (``make_cost_embedding``). With unit rows e^_v = e_v / ||e_v||, the transport cost between words
is C(i, j) = 1 - cos(e_i, e_j) (paper Eq. 6-7). EMD(one-hot(y), q) has the tractable upper bound the
paper optimises (its "DEMD"), which is the expected transport cost from y:

    EMO_t = sum_v q_v (1 - cos(e_y, e_v)) = 1 - < e^_y , sum_v q_v e^_v >          (paper Eq. 8-9)

The official code replaces one-hot(y) by a "stabilised" one-hot p = (one_hot + 1e-15) / ||.||_1, so
the first vector is p @ E^ rather than e^_y; we do the same (the difference is O(V * 1e-15)).

Final per-token loss (official code, both files; the paper's Sec. 3.3 combination):

    L_t = 0.5 * [ CE_t + stopgrad(CE_t / (EMO_t + 1e-10)) * EMO_t ]

i.e. a FIXED 0.5/0.5 mix of MLE and EMO in which the EMO term is rescaled per token to CE's magnitude
(the scale factor carries no gradient). The official ``gpt2.py`` also has ``mode="adaptive_emo"``, which
takes E from the live (training) LM head; the main language-modelling script (``run_lm_gpt2.sh``)
uses ``mode=emo``, the frozen cost embedding implemented here. The reduction is the masked mean
sum_t L_t m_t / (1e-15 + sum_t m_t) of the code, m_t = [y_t != ignore_index].

A later variant of the same weight exists in the official repository: ``emo_patch.py`` at commit 54a7880
(the LLaMA patch) and PyPI ``EMOLoss`` (mode=1) cap the stop-gradient ratio,
L_t = 0.5 * [CE_t + min(sg(CE_t / (EMO_t + 1e-10)), 3) * EMO_t]. The language-modelling code (gpt2.py)
has no cap, and ``emo_loss`` follows it by default (``ratio_cap=None``); ``ratio_cap=3.0`` gives the
capped variant (a diagnostic arm at cpu scale).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

STABLE_ONEHOT_EPS = 1e-15  # official code: (one_hot + 1e-15), L1-normalised
RATIO_EPS = 1e-10  # official code: CE / (EMO + 1e-10)


def make_cost_embedding(lm_head_weight: torch.Tensor) -> torch.Tensor:
    """A frozen copy of the LM head (V x d), taken AFTER the pretrained weights are loaded.

    Detached and cloned, so later training of the LM head does not move it (the paper's cost is
    fixed during fine-tuning). Rows are normalised inside ``emo_loss``, as in the official code.
    """
    if lm_head_weight.ndim != 2:
        raise ValueError(f"lm_head_weight must be (vocab, hidden), got shape {tuple(lm_head_weight.shape)}")
    return lm_head_weight.detach().clone().requires_grad_(False)


def _flatten(logits: torch.Tensor, labels: torch.Tensor, cost_embedding: torch.Tensor, ignore_index: int):
    if logits.ndim < 2:
        raise ValueError(f"logits must be (..., vocab), got shape {tuple(logits.shape)}")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels shape {tuple(labels.shape)} must equal logits.shape[:-1] = {tuple(logits.shape[:-1])}"
        )
    if labels.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"labels must be an integer tensor, got {labels.dtype}")
    vocab = logits.shape[-1]
    if cost_embedding.ndim != 2 or cost_embedding.shape[0] != vocab:
        raise ValueError(
            f"cost_embedding must be (vocab={vocab}, hidden), got shape {tuple(cost_embedding.shape)}"
        )
    logits = logits.reshape(-1, vocab)
    labels = labels.reshape(-1).long()
    mask = labels != ignore_index
    if mask.any():
        valid = labels[mask]
        if valid.min() < 0 or valid.max() >= vocab:
            raise ValueError(f"labels must be in 0..{vocab - 1} or ignore_index={ignore_index}")
    return logits, labels, mask


def emo_cost(
    logits: torch.Tensor, labels: torch.Tensor, cost_embedding: torch.Tensor, ignore_index: int = -100
):
    """Per-token EMO_t = 1 - <p @ E^, q @ E^> (shape of labels; 0 at ignored positions' slots is not
    guaranteed: ignored positions use label 0, as in the code, and must be masked by the caller)."""
    flat_logits, flat_labels, mask = _flatten(logits, labels, cost_embedding, ignore_index)
    return _emo_cost_flat(flat_logits, flat_labels, mask, cost_embedding).reshape(labels.shape)


def _emo_cost_flat(logits, labels, mask, cost_embedding):
    cost_embedding = cost_embedding.detach()  # frozen: no gradient into E
    norms = torch.linalg.vector_norm(cost_embedding, ord=2, dim=1, keepdim=True)
    if (norms == 0).any():
        raise ValueError("cost_embedding has an all-zero row: its cosine cost is undefined")
    e_hat = (cost_embedding / norms).to(logits.dtype)
    safe = torch.where(mask, labels, torch.zeros_like(labels))  # code: labels[labels == -100] = 0
    one_hot = F.one_hot(safe, num_classes=logits.shape[-1]).to(logits.dtype)
    p = (one_hot + STABLE_ONEHOT_EPS) / (one_hot + STABLE_ONEHOT_EPS).sum(-1, keepdim=True)
    q = torch.softmax(logits, dim=-1)
    return 1.0 - ((p @ e_hat) * (q @ e_hat)).sum(-1)


def emo_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    cost_embedding: torch.Tensor,
    ignore_index: int = -100,
    reduction: str = "mean",
    ratio_cap: float | None = None,
) -> torch.Tensor:
    """The EMO training loss 0.5 * [CE + sg(CE / (EMO + 1e-10)) * EMO] (see the module docstring).

    logits: (..., V) for the already-shifted positions; labels: (...) next tokens (``ignore_index``
    skipped); cost_embedding: (V, d) from ``make_cost_embedding``. reduction: "mean" (masked mean,
    the official code) or "none" (per-token L_t, 0 at ignored positions). ratio_cap: None (gpt2.py, the
    paper's LM experiments) or c > 0: the weight becomes min(sg(CE / (EMO + 1e-10)), c) (emo_patch.py at
    54a7880 and EMOLoss mode=1 use c = 3).
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if ratio_cap is not None and not ratio_cap > 0:
        raise ValueError(f"ratio_cap must be None or > 0, got {ratio_cap!r}")
    flat_logits, flat_labels, mask = _flatten(logits, labels, cost_embedding, ignore_index)
    ce = F.cross_entropy(flat_logits, flat_labels, ignore_index=ignore_index, reduction="none")
    emo = _emo_cost_flat(flat_logits, flat_labels, mask, cost_embedding)
    weight = (ce / (emo + RATIO_EPS)).detach()  # no gradient through the rescaling
    if ratio_cap is not None:
        weight = weight.clamp(max=ratio_cap)
    per_token = 0.5 * (ce + weight * emo)
    m = mask.to(per_token.dtype)
    per_token = per_token * m
    if reduction == "none":
        return per_token.reshape(labels.shape)
    return per_token.sum() / (STABLE_ONEHOT_EPS + m.sum())


def mle_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """The MLE baseline: token-mean cross-entropy over non-ignored positions."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).long(), ignore_index=ignore_index
    )
