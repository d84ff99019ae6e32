r"""The unlearning objectives of the official ``UnlearningTrainer.compute_loss`` and the
entropy-optimisation (EO) regulariser (Sec. 5 of the paper; ``entropy_loss`` in the code).

Notation: f a forget batch, r a retain batch, CE the token-mean next-token cross-entropy on the
answer tokens (``xentlab.lm.train.token_cross_entropy``), NLL the per-sequence *summed* answer loss.

* GA (``grad_ascent``):  L = -CE_f
* GD (``grad_diff``):    L = lambda CE_r - CE_f
* NPO (``npo``):         L = -(2 / beta) mean_i log sigmoid(beta (NLL_theta(f_i) - NLL_ref(f_i)))
                             + lambda CE_r      (the official NPO carries the retain term; beta 0.05)
* +EO:                   L += lambda_f H(f) + lambda_r H(r),  lambda_f = 1, lambda_r = -0.25,
  with H the mean over positions of the entropy of softmax(logits). lambda_f > 0 pushes forget
  outputs towards a single (unlearned) answer so that sampling no longer reaches the fact;
  lambda_r < 0 keeps retain outputs diverse.

Which positions H averages over: the official code averages over every position of the batch,
which it pads to max_length = 256, so question and padding positions dominate the mean.
``positions="answer"`` (our default) averages over the positions that predict answer tokens;
``positions="all"`` reproduces the official behaviour on batches padded to ``pad_to`` tokens.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from xentlab.lm.preference import npo_loss
from xentlab.lm.train import IGNORE_INDEX, hidden_states, lm_loss, token_cross_entropy

METHODS = ("ga", "gd", "npo")
POSITIONS = ("answer", "all")


def mean_entropy(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean Shannon entropy (nats) of softmax(logits) over the positions where ``mask`` is true
    (all positions when None). logits (B, T, V), mask (B, T)."""
    acc = torch.float64 if logits.dtype == torch.float64 else torch.float32  # upcast half precision
    logp = F.log_softmax(logits.to(acc), dim=-1)
    ent = -(logp.exp() * logp).sum(-1)  # (B, T)
    if mask is None:
        return ent.mean()
    mask = mask.to(ent.dtype)
    return (ent * mask).sum() / mask.sum().clamp_min(1.0)


def answer_positions(labels: torch.Tensor) -> torch.Tensor:
    """(B, T) mask of the positions whose logits predict an answer token (label at t + 1 kept)."""
    nxt = labels[:, 1:] != IGNORE_INDEX
    return torch.cat([nxt, torch.zeros_like(nxt[:, :1])], dim=1)


def pad_batch(batch: dict[str, torch.Tensor], length: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch to ``length`` tokens (the official max_length padding)."""
    extra = length - batch["input_ids"].shape[1]
    if extra < 0:
        raise ValueError(f"batch is {batch['input_ids'].shape[1]} tokens, longer than pad_to={length}")
    fill = {"input_ids": pad_id, "attention_mask": 0, "labels": IGNORE_INDEX}
    return {k: F.pad(v, (0, extra), value=fill[k]) for k, v in batch.items()}


def forward(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: (token-mean answer CE, logits (B, T, V)).

    The output layer's bias is added when it has one (Phi-1.5's lm_head does; the tiny Llama of the
    cpu scale has none, so its numbers are unchanged), as ``model(...).logits`` would."""
    h = hidden_states(model, batch)
    head = model.get_output_embeddings()
    bias = getattr(head, "bias", None)
    logits = h @ head.weight.T
    if bias is not None:
        logits = logits + bias
    ce = token_cross_entropy(h, head.weight, batch["labels"], bias=bias)
    return ce, logits


def entropy_term(logits: torch.Tensor, batch: dict[str, torch.Tensor], positions: str) -> torch.Tensor:
    if positions == "all":
        return mean_entropy(logits)
    if positions == "answer":
        return mean_entropy(logits, answer_positions(batch["labels"]))
    raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")


def unlearning_loss(
    model: Any,
    forget: dict[str, torch.Tensor],
    retain: dict[str, torch.Tensor],
    *,
    method: str,
    ref_model: Any = None,
    lam: float = 1.0,
    beta: float = 0.05,
    eo: bool = False,
    lambda_f: float = 1.0,
    lambda_r: float = -0.25,
    positions: str = "answer",
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one step (see the module docstring); returns (loss, logs)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    logs: dict[str, float] = {}
    f_logits = r_logits = None
    if method == "npo":
        nll = lm_loss(model, forget, reduction="sum")
        with torch.no_grad():
            nll_ref = lm_loss(ref_model, forget, reduction="sum")
        loss = npo_loss(nll, nll_ref, beta=beta)
        ce_r, r_logits = forward(model, retain)
        loss = loss + lam * ce_r
        logs.update(nll_forget=nll.mean().item(), ce_retain=ce_r.item())
    else:
        ce_f, f_logits = forward(model, forget)
        logs["ce_forget"] = ce_f.item()
        if method == "ga":
            loss = -ce_f
        else:
            ce_r, r_logits = forward(model, retain)
            loss = lam * ce_r - ce_f
            logs["ce_retain"] = ce_r.item()
    if eo:
        if f_logits is None:  # NPO: the official code runs one more forward pass for the logits
            _, f_logits = forward(model, forget)
        if r_logits is None:  # GA
            _, r_logits = forward(model, retain)
        h_f = entropy_term(f_logits, forget, positions)
        h_r = entropy_term(r_logits, retain, positions)
        loss = loss + lambda_f * h_f + lambda_r * h_r
        logs.update(entropy_forget=h_f.item(), entropy_retain=h_r.item())
    return loss, logs
