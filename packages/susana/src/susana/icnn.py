"""The ICNN score and loss (inter/intra-class nearest neighbours; Mendez-Ruiz et al., 2023).

Facts from the first author's indexed file (``modified_score``, ``get_icnn_loss``; repository
maumruiz/FSL-Loss, not verified as the paper's release). Every sample of the episode (support and
query together, the ``fullicnn`` variant the author's scripts train with) looks at its ``ipc``
nearest other samples (ipc = shot + query, the images per class), ordered by distance
d(a, b) = sqrt(||a - b||^2 + 1e-6):

* gamma = mean over samples of (# same-class samples among the k nearest) / k;
* lambda_sc = 1 - mean over samples with >= 1 same-class neighbour among the k nearest of the mean
  normalised same-class distance, where a sample's k nearest distances are first divided by its
  nearest other-class distance among the ipc neighbours, then, if the largest ratio exceeds 1, all
  are divided by it (so they lie in [0, 1]);
* lambda_dc = mean over samples with >= 1 other-class neighbour among the k nearest of the mean
  other-class distance, distances divided by the largest other-class distance of the whole episode;
  1 when no sample has an other-class neighbour among its k nearest;
* score = ((lambda_sc + lambda_dc) / 2 + gamma) / 2 in (0, 1], and L_ICNN = -log(score).

gamma carries no gradient (neighbour counts); the loss trains through the two lambda terms.
"""

from __future__ import annotations

import torch

DIST_EPS = 1e-6  # inside the square root (official nearest_neighbors)
DIV_EPS = 1e-7  # added to every denominator (official modified_score)


def _check(z: torch.Tensor, y: torch.Tensor, k: int) -> None:
    if z.ndim != 2:
        raise ValueError(f"embeddings must be N x D, got shape {tuple(z.shape)}")
    if y.shape != z.shape[:1]:
        raise ValueError(f"need one label per embedding, got {tuple(y.shape)} for {z.shape[0]} embeddings")
    if z.shape[0] < 3:
        raise ValueError(f"the ICNN score needs at least 3 samples, got {z.shape[0]}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def icnn_score(z: torch.Tensor, y: torch.Tensor, k: int = 4, ipc: int | None = None) -> torch.Tensor:
    """The ICNN score of embeddings ``z`` (N x D) with labels ``y`` (N,): a scalar in (0, 1].

    ``k`` neighbours enter the score (4 in the paper); ``ipc`` neighbours (default k + 1) are searched
    for the nearest other-class distance that normalises the same-class distances.
    """
    _check(z, y, k)
    n = z.shape[0]
    # official: on sets too small for k neighbours plus slack, k shrinks to n - 2 and gamma is fixed to 1
    small = k + 2 >= n
    if small:
        k = n - 2
    ipc = k + 1 if ipc is None else ipc
    if not k <= ipc <= n - 1:
        raise ValueError(f"need k <= ipc <= N - 1 neighbours, got k={k}, ipc={ipc}, N={n}")

    sq = (z.unsqueeze(1) - z.unsqueeze(0)).pow(2).sum(-1)
    d = (sq + DIST_EPS).sqrt()
    # a sample is not its own neighbour (the official code drops the first, self, column of its top-k)
    d = d.masked_fill(torch.eye(n, dtype=torch.bool, device=z.device), float("inf"))
    dist, idx = d.topk(ipc, dim=1, largest=False)  # ascending: the ipc nearest other samples
    same = y[idx] == y.unsqueeze(1)  # N x ipc

    # lambda_sc: same-class distances relative to the sample's nearest other-class neighbour
    nn_dc = dist.masked_fill(same, float("inf")).min(dim=1, keepdim=True).values  # inf: none among ipc
    nd = dist[:, :k] / (nn_dc + DIV_EPS)
    nd = nd / nd.max(dim=1, keepdim=True).values.clamp(min=1.0)  # divide by max(1, largest ratio)
    sc = same[:, :k].to(z.dtype)
    sc_count = sc.sum(dim=1)
    sc_mean = (nd * sc).sum(dim=1) / (sc_count + DIV_EPS)
    lam_sc = 1 - sc_mean.sum() / ((sc_count > 0).sum() + DIV_EPS)

    # lambda_dc: other-class distances relative to the episode's largest such distance
    dc = 1 - sc
    dcd = dist[:, :k] * dc
    dcd = dcd / (dcd.max() + DIV_EPS)
    dc_count = dc.sum(dim=1)
    dc_mean = dcd.sum(dim=1) / (dc_count + DIV_EPS)
    lam_dc = dc_mean.sum() / ((dc_count > 0).sum() + DIV_EPS)
    if not bool((dc_count > 0).any()):
        lam_dc = (lam_dc - 1).abs()  # official |lambda_dc - 1|: perfect separation scores 1

    gamma = torch.ones((), dtype=z.dtype, device=z.device) if small else sc_count.sum() / k / n
    return ((lam_sc + lam_dc) / 2 + gamma) / 2


def icnn_loss(z: torch.Tensor, y: torch.Tensor, k: int = 4, ipc: int | None = None) -> torch.Tensor:
    """L_ICNN = -log(ICNN score) (official get_icnn_loss)."""
    return -torch.log(icnn_score(z, y, k=k, ipc=ipc))
