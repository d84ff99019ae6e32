"""RePRI's transductive per-episode classifier (paper Sec. 3; official ``src/classifier.py``).

Shapes follow the official code: a batch of T independent tasks, ``features_s`` (T, shots, C, h, w),
``features_q`` (T, 1, C, h, w), masks downsampled to (h, w) with nearest interpolation, 255 = ignored.
Each task has its own prototype ``w`` (T, C) and bias ``b`` (T,); the loss is summed over tasks, so
one SGD step on the batch equals one SGD step per task (the parameters do not interact).

* Logits (Eq. 1): ``s = tau * cos(f, w)``; foreground probability ``p_fg = sigmoid(s - b)``,
  ``p = [1 - p_fg, p_fg]``.
* Initialisation: ``w`` = masked mean of the support foreground features; ``b`` = mean query logit
  (so about half the query is foreground at first); pi = the soft foreground proportion of the query
  under this initial classifier (``compute_FB_param`` called right after ``init_prototypes``).
* Loss (Eq. 2-5): ``L = l1 * CE(support) + l2 * KL(p_hat || pi) + l3 * H(query)`` with
  CE and H averaged over valid pixels (and summed over the 2 classes), ``p_hat`` the mean query
  probability vector and ``KL = sum_k p_hat_k log(p_hat_k / (pi_k + 1e-10))``; logs use ``+ 1e-10``
  exactly as the official code. Weights: ``l1 = 1``, ``l2 = l3 = 1 / shots`` ('auto').
* Optimisation: SGD (no momentum), lr 0.025, ``for iteration in range(1, adapt_iter)`` i.e.
  ``adapt_iter - 1`` steps; when ``iteration + 1`` is in ``fb_update`` (official ``[10]``) pi is
  re-estimated from the current query predictions and ``l2 += 1`` (skipped when l2 is 0 or pi is
  the oracle).
* Oracle-RePRI: pi is the true foreground/background proportion of the (downsampled) query mask and
  is never updated. Non-oracle calls never receive the query labels (``pi_oracle=None``), so the
  oracle's pi cannot leak into the other arms.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE = 255


@dataclass(frozen=True)
class RePRIConfig:
    """One inference arm (defaults: official ``scripts/test.sh`` + ``config_files/pascal.yaml``)."""

    temperature: float = 20.0
    """tau in tau * cos(f, w)"""
    adapt_iter: int = 50
    """official loop ``range(1, adapt_iter)``: adapt_iter - 1 SGD steps (0 or 1: prototype init only)"""
    lr: float = 0.025
    """SGD learning rate on (w, b)"""
    weights: tuple[float | str, float | str, float | str] = (1.0, "auto", "auto")
    """(l1, l2, l3); 'auto' = 1 / shots"""
    fb_update: tuple[int, ...] = (10,)
    """iterations (official ``iteration + 1``) at which pi is re-estimated and l2 += 1"""
    fb_type: str = "soft"
    """'soft' (estimated pi) or 'oracle' (true query proportion)"""

    def __post_init__(self) -> None:
        if self.fb_type not in ("soft", "oracle"):
            raise ValueError(f"fb_type must be 'soft' or 'oracle', got {self.fb_type!r}")
        for w in self.weights:
            if w != "auto" and not isinstance(w, int | float):
                raise ValueError(f"weights must be numbers or 'auto', got {self.weights}")


def downsample_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(T, S, H, W) int mask -> (T, S, h, w) with nearest interpolation (official ``F.interpolate``)."""
    return F.interpolate(mask.float(), size=size, mode="nearest").long()


def cosine_logits(features: torch.Tensor, prototype: torch.Tensor, temperature: float) -> torch.Tensor:
    """tau * cos(f, w): features (T, S, C, h, w), prototype (T, C) -> (T, S, h, w) (Eq. 1)."""
    dot = torch.einsum("tschw,tc->tshw", features, prototype)
    norms = prototype.norm(dim=1).view(-1, 1, 1, 1) * features.norm(dim=2)
    return temperature * dot / (norms + 1e-10)


def probas(logits: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """(T, S, h, w) logits -> (T, S, 2, h, w) probabilities [background, foreground]."""
    p_fg = torch.sigmoid(logits - bias.view(-1, 1, 1, 1)).unsqueeze(2)
    return torch.cat([1 - p_fg, p_fg], dim=2)


def one_hot(mask: torch.Tensor) -> torch.Tensor:
    """(T, S, h, w) in {0, 1, 255} -> (T, S, 2, h, w); ignored pixels map to class 0 (masked later)."""
    m = mask.clone()
    m[m == IGNORE] = 0
    return F.one_hot(m, 2).permute(0, 1, 4, 2, 3).float()


def support_ce(p: torch.Tensor, valid: torch.Tensor, target_1h: torch.Tensor) -> torch.Tensor:
    """Per-task CE over valid support pixels (official ``get_ce``): (T,)."""
    ce = -(valid.unsqueeze(2) * target_1h * torch.log(p + 1e-10)).sum(2)
    return ce.sum(dim=(1, 2, 3)) / valid.sum(dim=(1, 2, 3))


def query_terms(p: torch.Tensor, valid: torch.Tensor, pi: torch.Tensor):
    """Per-task KL(p_hat || pi), mean pixel entropy H, and marginal p_hat (official ``get_entropies``)."""
    n_valid = valid.sum(dim=(1, 2, 3))
    ent = -(valid.unsqueeze(2) * (p * torch.log(p + 1e-10))).sum(2).sum(dim=(1, 2, 3)) / n_valid
    marginal = (valid.unsqueeze(2) * p).sum(dim=(1, 3, 4)) / n_valid.unsqueeze(1)
    kl = (marginal * torch.log(marginal / (pi + 1e-10))).sum(1)
    return kl, ent, marginal


def true_proportion(gt_q_ds: torch.Tensor) -> torch.Tensor:
    """Oracle pi: [bg, fg] proportion of valid pixels of the downsampled query mask, (T, 2)."""
    valid = (gt_q_ds != IGNORE).float()
    fg = ((gt_q_ds == 1).float() * valid).sum(dim=(1, 2, 3)) / valid.sum(dim=(1, 2, 3))
    return torch.stack([1 - fg, fg], 1)


def soft_proportion(p_q: torch.Tensor, valid_q: torch.Tensor) -> torch.Tensor:
    """Estimated pi: mean predicted [bg, fg] probability over valid query pixels, (T, 2)."""
    return (valid_q.unsqueeze(2) * p_q).sum(dim=(1, 3, 4)) / valid_q.sum(dim=(1, 2, 3)).unsqueeze(1)


def _as_matrix(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, S, C, h, w) -> (T, S*h*w, C) contiguous and the inverse pixel norms (T, S*h*w)."""
    t, s, c, h, w = features.shape
    mat = features.permute(0, 1, 3, 4, 2).reshape(t, s * h * w, c).contiguous()
    return mat, 1.0 / (mat.norm(dim=2) + 1e-10)


@dataclass
class EpisodeResult:
    prototype: torch.Tensor
    """(T, C) adapted prototypes"""
    bias: torch.Tensor
    """(T,) adapted biases"""
    pi_init: torch.Tensor
    """(T, 2) pi before adaptation"""
    pi_final: torch.Tensor
    """(T, 2) pi used in the last iteration"""


def run_repri(
    features_s: torch.Tensor,
    features_q: torch.Tensor,
    gt_s_ds: torch.Tensor,
    valid_q: torch.Tensor,
    cfg: RePRIConfig,
    pi_oracle: torch.Tensor | None = None,
) -> EpisodeResult:
    """RePRI inference on T tasks; returns the adapted classifier.

    features_s (T, shots, C, h, w), features_q (T, 1, C, h, w) (already L2-normalised over C, official
    ``norm_feat``), gt_s_ds (T, shots, h, w) in {0, 1, 255}, valid_q (T, 1, h, w) float (1 = valid
    query pixel; the query *labels* are never passed), pi_oracle (T, 2) only for ``fb_type='oracle'``.
    """
    if cfg.fb_type == "oracle" and pi_oracle is None:
        raise ValueError("fb_type='oracle' needs pi_oracle (the true query proportion)")
    if cfg.fb_type == "soft" and pi_oracle is not None:
        raise ValueError("a non-oracle arm must not receive the true query proportion")
    t, shots, c, h, w = features_s.shape
    valid_s = (gt_s_ds != IGNORE).float()
    target_s = one_hot(gt_s_ds)
    # features as (T, pixels, C) matrices with their norms computed once: the same tau * cos(f, w) as
    # cosine_logits (tested), a batched matmul per step instead of a strided einsum + norm
    mat_s, inv_s = _as_matrix(features_s)
    mat_q, inv_q = _as_matrix(features_q)

    def logits(mat, inv, proto, n):
        cos = torch.bmm(mat, proto.unsqueeze(2)).squeeze(2) * inv / (proto.norm(dim=1, keepdim=True) + 1e-10)
        return cfg.temperature * cos.view(t, n, h, w)

    # initialisation (official init_prototypes): masked mean of support foreground features
    fg = (gt_s_ds == 1).unsqueeze(2).float()
    prototype = (features_s * fg).sum(dim=(1, 3, 4)) / (fg.sum(dim=(1, 3, 4)) + 1e-10)
    with torch.no_grad():
        bias = logits(mat_q, inv_q, prototype, 1).mean(dim=(1, 2, 3))
        if cfg.fb_type == "oracle":
            pi = pi_oracle.clone()
        else:  # compute_FB_param('soft') right after init
            pi = soft_proportion(probas(logits(mat_q, inv_q, prototype, 1), bias), valid_q)
    pi_init = pi.clone()

    def weight(wt: float | str) -> torch.Tensor:
        value = 1.0 / shots if wt == "auto" else float(wt)
        # on the features' device: a CPU (T,) tensor cannot be combined with CUDA losses at --scale full
        return torch.full((t,), value, device=features_s.device)

    l1, l2, l3 = (weight(wt) for wt in cfg.weights)
    prototype = prototype.clone().requires_grad_()
    bias = bias.clone().requires_grad_()
    opt = torch.optim.SGD([prototype, bias], lr=cfg.lr)
    for iteration in range(1, cfg.adapt_iter):
        p_s = probas(logits(mat_s, inv_s, prototype, shots), bias)
        p_q = probas(logits(mat_q, inv_q, prototype, 1), bias)
        kl, ent, _ = query_terms(p_q, valid_q, pi)
        ce = support_ce(p_s, valid_s, target_s)
        loss = l1 * ce + l2 * kl + l3 * ent
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
        # re-estimate pi from the current query predictions (official: after the step, iteration + 1)
        if (iteration + 1) in cfg.fb_update and cfg.fb_type != "oracle" and l2.sum().item() != 0:
            with torch.no_grad():
                pi = soft_proportion(probas(logits(mat_q, inv_q, prototype, 1), bias), valid_q)
            l2 = l2 + 1
    return EpisodeResult(prototype.detach(), bias.detach(), pi_init, pi)


def predict(features_q: torch.Tensor, result: EpisodeResult, temperature: float, size: tuple[int, int]):
    """Foreground mask at image resolution (T, H, W) bool: logits upsampled bilinearly
    (align_corners=True) then argmax over [bg, fg], i.e. p_fg > 0.5 (official episodic_validate)."""
    logits = cosine_logits(features_q, result.prototype, temperature)  # (T, 1, h, w)
    logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=True)
    return (logits[:, 0] - result.bias.view(-1, 1, 1)) > 0
