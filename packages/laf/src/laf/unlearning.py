"""Label-Agnostic Forgetting (Shen et al., ICLR 2024) and the baselines, as the official code does them.

Official files: ``Train.py`` (``train``, ``vae_train``, ``vae_loss_function``), ``VUnlearning.py``
(``extractor_loss_functionnmse``, ``extractor_loss_functioncosine``, ``extractor_unlearning``).

LAF, without any label (paper Sec. 3, Eqs. 4-9):

0. Two VAEs on the frozen original model's embeddings: one on the **whole training set** (the
   notebook's ``s_vae`` is trained on ``loaders['train']``) and one on the forgetting set. VAE loss:
   ``sum-MSE / B + 0.025 * KLD / B``; Adam lr 1e-3, 10 epochs, batch 32.
1. Representation-level unlearning (UE), Adam(lr_ue) on every model parameter:
   ``ell(e) = sum_j exp(m_j / (m_j + 1))`` with ``m_j = ||VAE(e_j) - e_j||^2`` and
   ``L_UE = ell_sVAE(remaining batch) - ell_uVAE(forgetting batch)``.
2. Contrastive representation alignment (RA), a second Adam(lr_ra) on the same parameters, with a
   frozen copy of the original model as teacher: ``c_i = 1 - cos(e_i, e_i^T)`` on remaining samples,
   ``d_j`` the same on forgetting samples, ``L_RA = sum_i log(exp(c_i) / sum_j exp(d_j / T))``.

Steps 1 and 2 alternate on every pair of batches of ``zip(forgetting, remaining)``, so an epoch is as
long as the shorter loader. The model stays in eval mode throughout (the notebook unlearns a deep
copy of the model that ``Train.test`` left in eval mode).

LAF+R (paper: LAF followed by a supervised repair with the labels of the remaining data) is the
official ``classifier_unlearning``: Adam on ``fc2`` only, cross-entropy on labelled remaining batches,
iterating ``zip(unlearn, remain)`` so that an epoch has as many batches as the shorter loader (the
forgetting batches are drawn but never used). The repository's driver never calls it, so its learning
rate and epochs are not given there (see the README's deviations).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from laf.models import VAE


def batches(n: int, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """One shuffled epoch of index batches (DataLoader with shuffle=True, drop_last=False)."""
    order = torch.randperm(n, generator=gen)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def train_classifier(
    model, x, y, *, epochs=20, lr=1e-4, weight_decay=1e-4, batch_size=32, seed=0
) -> nn.Module:
    """Official ``Train.train``: Adam(lr 1e-4, weight decay 1e-4), CE, 20 epochs, batch 32."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in batches(len(y), batch_size, gen):
            loss = F.cross_entropy(model(x[idx])[0], y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    return model


def vae_loss(e_out, e, mu, sigma) -> torch.Tensor:
    """Official ``vae_loss_function``: sum-MSE / B + 0.025 * KLD / B (log(sigma^2 + 1e-8) in the KLD)."""
    b = e.shape[0]
    mse = F.mse_loss(e_out, e, reduction="sum") / b
    kld = -0.5 * torch.sum(torch.log(sigma.pow(2) + 1e-8) + 1 - mu.pow(2) - sigma.pow(2)) / b
    return mse + 0.025 * kld


def train_vae(model, x, *, latent_dims=8, epochs=10, lr=1e-3, batch_size=32, seed=0) -> VAE:
    """Official ``vae_train`` on the frozen model's embeddings of ``x``."""
    vae = VAE(latent_dims).to(x.device)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    with torch.no_grad():
        emb = torch.cat([model(x[i : i + 512])[1] for i in range(0, len(x), 512)])
    vae.train()
    for _ in range(epochs):
        for idx in batches(len(emb), batch_size, gen):
            e = emb[idx]
            e_out, _, mu, sigma = vae(e)
            loss = vae_loss(e_out, e, mu, sigma)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    vae.eval()
    for p in vae.parameters():
        p.requires_grad_(False)
    return vae


def extractor_nmse(e_out: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Official ``extractor_loss_functionnmse``: sum_j exp(m_j / (m_j + 1)), m_j the summed squared error."""
    m = ((e_out - e) ** 2).sum(dim=1)
    return torch.exp(m / (m + 1)).sum()


def alignment_loss(s_e, s_t, u_e, u_t, temp: float) -> torch.Tensor:
    """Official ``extractor_loss_functioncosine``: sum_i log(exp(c_i) / sum_j exp(d_j / temp)).

    ``c = 1 - cos(s_e, s_t)`` (CosineEmbeddingLoss with target 1) on remaining samples and ``d`` the same
    on forgetting samples; ``log(exp(c_i) / S) = c_i - log S`` with S computed by logsumexp.
    """
    c = 1.0 - F.cosine_similarity(s_e, s_t, dim=1, eps=1e-8)
    d = 1.0 - F.cosine_similarity(u_e, u_t, dim=1, eps=1e-8)
    return (c - torch.logsumexp(d / temp, dim=0)).sum()


def laf_unlearn(model, s_vae, u_vae, x_forget, x_remain, *, epochs=20, lr_ue=5e-5, lr_ra=1e-4, temp=20.0,
                batch_size=32, seed=0, log=None) -> tuple[nn.Module, list[float], list[float]]:  # fmt: skip
    """Official ``extractor_unlearning``: returns the unlearned model and the per-epoch mean losses."""
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    model.eval()
    opt_ue = torch.optim.Adam(model.parameters(), lr=lr_ue)
    opt_ra = torch.optim.Adam(model.parameters(), lr=lr_ra)
    gen = torch.Generator().manual_seed(seed)
    ue_curve, ra_curve = [], []
    for epoch in range(epochs):
        tot_ue = tot_ra = 0.0
        count = 0
        for u_idx, s_idx in zip(
            batches(len(x_forget), batch_size, gen), batches(len(x_remain), batch_size, gen)
        ):
            u_x, s_x = x_forget[u_idx], x_remain[s_idx]
            # step 1: representation-level unlearning against the two VAEs
            _, s_e = model(s_x)
            _, u_e = model(u_x)
            loss_ue = extractor_nmse(s_vae(s_e)[0], s_e) - extractor_nmse(u_vae(u_e)[0], u_e)
            opt_ue.zero_grad(set_to_none=True)
            loss_ue.backward()
            opt_ue.step()
            # step 2: contrastive alignment with the frozen original model
            _, s_e = model(s_x)
            _, u_e = model(u_x)
            with torch.no_grad():
                s_t, u_t = teacher(s_x)[1], teacher(u_x)[1]
            loss_ra = alignment_loss(s_e, s_t, u_e, u_t, temp)
            opt_ra.zero_grad(set_to_none=True)
            loss_ra.backward()
            opt_ra.step()
            tot_ue, tot_ra, count = tot_ue + loss_ue.item(), tot_ra + loss_ra.item(), count + 1
            if not (math.isfinite(tot_ue) and math.isfinite(tot_ra)):
                raise FloatingPointError(f"non-finite LAF loss at epoch {epoch}")
        ue_curve.append(tot_ue / max(count, 1))
        ra_curve.append(tot_ra / max(count, 1))
        if log:
            log(step=epoch + 1, laf_ue=ue_curve[-1], laf_ra=ra_curve[-1])
    return model, ue_curve, ra_curve


def repair_classifier(model, x_remain, y_remain, *, n_forget: int, epochs=20, lr=1e-4, batch_size=32,
                      seed=0) -> tuple[nn.Module, list[float]]:  # fmt: skip
    """Official ``classifier_unlearning`` (LAF+R): train only ``model.fc2`` on labelled remaining data.

    Only the remaining data and their labels enter; of the forgetting set only its size ``n_forget``
    is needed, because the official loop runs over ``zip(loaders['unlearn'], loaders['remain'])`` and
    so stops each epoch after ``ceil(min(n_forget, n_remain) / batch_size)`` remaining batches.
    Adam(lr) without weight decay on ``fc2``'s parameters, mean cross-entropy. Every other parameter is
    untouched and the model stays in eval mode (as ``extractor_unlearning`` leaves it), so the
    embeddings ``fc1`` feeds to ``fc2`` do not change during the repair: they are computed once and the
    loop runs ``fc2`` on them, which is the official forward pass without repeating the frozen part.
    Returns the model and the per-epoch mean loss.
    """
    if len(y_remain) != len(x_remain):
        raise ValueError(f"x_remain has {len(x_remain)} rows but y_remain has {len(y_remain)}")
    if n_forget < 1 or len(y_remain) < 1:
        raise ValueError(
            f"the repair needs a non-empty forgetting and remaining set, got {n_forget}, {len(y_remain)}"
        )
    head = model.fc2
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    per_epoch = -(-min(n_forget, len(y_remain)) // batch_size)
    model.eval()
    with torch.no_grad():
        emb = torch.cat([model(x_remain[i : i + 512])[1] for i in range(0, len(x_remain), 512)])
    curve = []
    for _ in range(epochs):
        tot = 0.0
        for _, idx in zip(range(per_epoch), batches(len(y_remain), batch_size, gen)):
            loss = F.cross_entropy(head(emb[idx]), y_remain[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.item()
        curve.append(tot / per_epoch)
    if not all(math.isfinite(v) for v in curve):
        raise FloatingPointError("non-finite LAF+R repair loss")
    return model, curve


def fine_tune(model, x_remain, y_remain, *, epochs=5, lr=1e-4, batch_size=32, seed=0) -> nn.Module:
    """Baseline: keep training the original model on the remaining data only (supervised)."""
    return train_classifier(model, x_remain, y_remain, epochs=epochs, lr=lr, weight_decay=0.0,
                            batch_size=batch_size, seed=seed)  # fmt: skip


def gradient_ascent(model, x_forget, y_forget, *, epochs=5, lr=1e-4, batch_size=32, seed=0) -> nn.Module:
    """Baseline: maximise the CE of the forgetting data (supervised, no term for the remaining data)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    for _ in range(epochs):
        for idx in batches(len(y_forget), batch_size, gen):
            loss = -F.cross_entropy(model(x_forget[idx])[0], y_forget[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model
