"""TFUP's pieces, following the official code (wlb12345/TFUP, ``main.py`` and ``utils.py``).

Notation: ``f`` (N x D) image features, ``W`` (C x D) class text weights (mean of the prompt
embeddings per class), ``keys`` (M x D) cache features, ``values`` (M x C) one-hot cache labels.
Everything here is float32 (the official code runs CLIP in float16).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def cache_shots(n: int, n_classes: int, proportion: float = 0.3, lo: int = 9, hi: int | None = 16) -> int:
    """Samples per class: ``clamp(floor(proportion N / C), lo, hi)`` (main.py; the training set has no cap)."""
    k = max(lo, int(n * proportion / n_classes))
    return k if hi is None else min(hi, k)


def zero_shot_probs(f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``p = softmax(10 f W^T)`` on unit vectors: the distribution TFUP compares with KL (utils.py)."""
    return F.softmax(10.0 * _unit(f) @ _unit(w).t(), dim=1)


def zero_shot_pred(f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Zero-shot class: ``argmax_c cos(f, w_c)`` (main.py ``TFUP``: ``R_fW = 100 f W`` on unit vectors; the raw
    dot product would favour classes with longer text weights)."""
    return (_unit(f) @ _unit(w).t()).argmax(1)


def n_loader_batches(n: int, batch: int) -> int:
    """``len(loader)`` of a dassl *training* loader: ``drop_last = len(data) >= batch`` (dassl
    ``build_data_loader``), so ``floor(n / batch)`` full batches, or one partial batch when ``n < batch``."""
    if n < 1 or batch < 1:
        raise ValueError(f"need n >= 1 and batch >= 1, got n={n}, batch={batch}")
    return n // batch if n >= batch else 1


def loader_batches(n: int, batch: int, gen: torch.Generator) -> list[torch.Tensor]:
    """One epoch of a dassl training loader over ``n`` items: a random order (``RandomSampler``) cut into
    batches, the last partial batch dropped when ``n >= batch`` (main.py builds ``refine_loader`` and
    ``total_loader`` with ``is_train=True``)."""
    order = torch.randperm(n, generator=gen)
    return list(order.split(batch))[: n_loader_batches(n, batch)]


def select_cache(f: torch.Tensor, w: torch.Tensor, shots: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Confidence then prototype selection (``refine_few_shots_without_label``, paper Sec. 3.2).

    For each class c: the ``2 shots`` samples with the highest p_c (instance confidence); for each
    candidate j the summed KL ``sum_k KL(p_j || p_k)`` over the candidates k (its distance to the
    candidate set's 'prototype'); keep the ``shots`` with the smallest sum. Returns (indices into f,
    class of each selected sample); a sample may be chosen for two classes, as in the official code.
    """
    p = zero_shot_probs(f, w)
    idx, lab = [], []
    for c in range(w.shape[0]):
        cand = p[:, c].argsort(descending=True)[: 2 * shots]
        pc = p[cand]  # m x C
        # KL(p_j || p_k) = sum_i p_j,i (log p_j,i - log p_k,i); summed over k (official: sum over the whole
        # m x C matrix of p_j * log(p_j / p_k))
        logp = pc.log()
        score = (pc * logp).sum(1) * len(pc) - pc @ logp.sum(0)
        keep = cand[score.argsort()[:shots]]
        idx.append(keep)
        lab.append(torch.full((len(keep),), c, dtype=torch.long))
    return torch.cat(idx), torch.cat(lab)


def msm_similarity(keys: torch.Tensor, f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Multi-level similarity weight (``get_sim_based_kl``): N x M in [0, 2].

    ``KL(p_test || p_cache)`` per pair, z-scored along each test row (unbiased std, as torch.std),
    min-max scaled per row, then ``sim = 2 (1 - scaled)``: the closest cache entry in prediction
    space gets 2, the farthest 0.
    """
    pk = zero_shot_probs(keys, w)
    pt = zero_shot_probs(f, w)
    kl = (pt * pt.log()).sum(1, keepdim=True) - pt @ pk.log().t()
    z = (kl - kl.mean(1, keepdim=True)) / kl.std(1, keepdim=True)
    lo, hi = z.min(1, keepdim=True).values, z.max(1, keepdim=True).values
    return 2.0 * (1.0 - (z - lo) / (hi - lo))


def cache_logits(
    f: torch.Tensor,
    w: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    beta: float = 1.0,
    msm: bool = True,
) -> torch.Tensor:
    """``exp(-beta (1 - R)) @ values`` with ``R = (f keys^T) * sim`` (main.py ``TFUP``); ``msm=False`` drops
    the KL weight (plain cosine affinity, the Tip-Adapter form)."""
    f, keys = _unit(f), _unit(keys)
    r = f @ keys.t()
    if msm:
        r = r * msm_similarity(keys, f, w)
    return torch.exp(-beta * (1.0 - r)) @ values


def tfup_logits(
    f: torch.Tensor,
    w: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    alpha: float = 0.3,
    beta: float = 1.0,
    msm: bool = True,
) -> torch.Tensor:
    """TFUP: ``100 f W^T + alpha cache_logits`` (main.py ``TFUP``; alpha 0.3, beta 1 in every config)."""
    return 100.0 * _unit(f) @ _unit(w).t() + alpha * cache_logits(f, w, keys, values, beta, msm)


def marginal_loss(logits: torch.Tensor) -> torch.Tensor:
    """``-H(mean_i softmax(logits_i))`` (utils.py, with its 1e-6 inside the log): minimising it pushes
    the batch's mean prediction toward uniform."""
    m = F.softmax(logits, dim=1).mean(0)
    return (m * torch.log(m + 1e-6)).sum()


class TextAdapter(nn.Module):
    """Text residual: ``W' = unit((1 - r) W + r R)`` with ``R`` (C x D) initialised to 0 (utils.py, r = 0.5)."""

    def __init__(self, w: torch.Tensor, ratio: float = 0.5) -> None:
        super().__init__()
        self.register_buffer("w", w.clone())
        self.ratio = ratio
        self.res = nn.Parameter(torch.zeros_like(w))

    def forward(self) -> torch.Tensor:
        return _unit((1 - self.ratio) * self.w + self.ratio * self.res)


class ImageAdapter(nn.Module):
    """``f' = unit(r g(f) + (1 - r) f)``, g = Linear(D, D/4) ReLU Linear(D/4, D) ReLU, no biases (utils.py
    ``Adapter``; r = ratio_alpha = 0.2)."""

    def __init__(self, dim: int, reduction: int = 4, ratio: float = 0.2) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(dim, dim // reduction, bias=False),
            nn.ReLU(),
            nn.Linear(dim // reduction, dim, bias=False),
            nn.ReLU(),
        )
        self.ratio = ratio

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return _unit(self.ratio * self.fc(f) + (1 - self.ratio) * f)


def cosine_lr(step: int, base: float, t_max: int) -> float:
    """``torch.optim.lr_scheduler.CosineAnnealingLR`` (eta_min 0) in closed form; periodic past t_max."""
    return base * 0.5 * (1 + math.cos(math.pi * step / t_max))
