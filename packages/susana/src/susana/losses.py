"""ProtoNet logits, the Proto-Triplet loss and the averaged loss combination (Mendez-Ruiz et al., 2023).

Facts from the first author's indexed files (``proto_triplet_loss``; ``models/protonet.py`` and
``util/metric.euclidean_dist`` of maumruiz/FSL-Loss and maumruiz/FewShot-KidneyStones; repository unverified):
* ProtoNet logits (the CE term) are minus the *squared* Euclidean distance over a temperature,
  -||q - c_k||^2 / T with T = 1 (the ``--temperature`` default; none of the author's scripts read here sets it),
  which is also Snell et al.'s choice (squared Euclidean, Sec. 2.2 / Eq. 2, no temperature);
* the Proto-Triplet and ICNN terms use the Euclidean distance with a small epsilon inside the root:
  d(a, b) = sqrt(||a - b||^2 + 1e-6);
* Proto-Triplet: per query, d+ = distance to its own class prototype, d- = distance to the nearest
  prototype of another class; loss = mean_q max(d+ - d- + margin, 0), margin 0.5;
* the selected losses are averaged: (CE + sum of extras) / (number of losses).
The ICNN loss lives in ``susana.icnn``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from susana.icnn import icnn_loss

EPS = 1e-6  # inside the square root, as in the official nearest_neighbors(): keeps grad finite at d = 0


def _check_pair(queries: torch.Tensor, protos: torch.Tensor) -> None:
    if queries.ndim != 2 or protos.ndim != 2:
        raise ValueError(
            f"queries and prototypes must be 2-d, got {tuple(queries.shape)} and {tuple(protos.shape)}"
        )
    if queries.shape[1] != protos.shape[1]:
        raise ValueError(
            f"embedding sizes differ: queries {queries.shape[1]} vs prototypes {protos.shape[1]}"
        )


def prototypes(support: torch.Tensor, y_support: torch.Tensor, n_way: int) -> torch.Tensor:
    """Class prototypes c_k = mean of the support embeddings of class k (ProtoNet, Snell et al. Eq. 1).

    ``y_support`` holds episode labels in 0..n_way-1; every class needs at least one support sample.
    """
    if support.ndim != 2 or y_support.shape != support.shape[:1]:
        raise ValueError(
            f"support must be N x D with N labels, got {tuple(support.shape)}, {tuple(y_support.shape)}"
        )
    counts = torch.bincount(y_support, minlength=n_way)
    if len(counts) != n_way or (counts == 0).any():
        raise ValueError(f"every class 0..{n_way - 1} needs a support sample, got counts {counts.tolist()}")
    sums = torch.zeros(n_way, support.shape[1], dtype=support.dtype, device=support.device)
    sums.index_add_(0, y_support, support)
    return sums / counts.unsqueeze(1).to(support.dtype)


def sq_distances(queries: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
    """Q x K matrix of squared Euclidean distances ||q - c_k||^2 (the author's util/metric.euclidean_dist,
    which despite its name returns the square, with no epsilon)."""
    _check_pair(queries, protos)
    return (queries.unsqueeze(1) - protos.unsqueeze(0)).pow(2).sum(-1)


def distances(queries: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
    """Q x K matrix of sqrt(||q - c_k||^2 + 1e-6) (the official distance_matrix + nearest_neighbors)."""
    return (sq_distances(queries, protos) + EPS).sqrt()


def proto_logits(queries: torch.Tensor, protos: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """ProtoNet logits -||q - c_k||^2 / temperature (the author's models/protonet.py; Snell et al. Eq. 2
    with squared Euclidean d and no temperature, i.e. temperature 1, the author's default)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return -sq_distances(queries, protos) / temperature


def proto_triplet_loss(
    queries: torch.Tensor, y_query: torch.Tensor, protos: torch.Tensor, margin: float = 0.5
) -> torch.Tensor:
    """Proto-Triplet loss: mean over queries of max(d(q, c_y) - min_{k != y} d(q, c_k) + margin, 0).

    The anchor is the query, the positive its own prototype and the negative the hardest (nearest)
    other-class prototype; margin 0.5 as in the official code.
    """
    d = distances(queries, protos)
    if y_query.shape != d.shape[:1]:
        raise ValueError(f"need one label per query, got {tuple(y_query.shape)} for {d.shape[0]} queries")
    if d.shape[1] < 2:
        raise ValueError("the Proto-Triplet loss needs at least two prototypes (a negative class)")
    if (y_query < 0).any() or (y_query >= d.shape[1]).any():
        raise ValueError(f"query labels must lie in 0..{d.shape[1] - 1}")
    own = F.one_hot(y_query, d.shape[1]).bool()
    d_pos = d[own]
    d_neg = d.masked_fill(own, float("inf")).min(dim=1).values
    return torch.clamp(d_pos - d_neg + margin, min=0.0).mean()


def combined_loss(
    ce: torch.Tensor, extras: list[torch.Tensor] | tuple[torch.Tensor, ...] = ()
) -> torch.Tensor:
    """(CE + sum of extra losses) / (1 + number of extras): the official code averages the selected losses."""
    return (ce + sum(extras)) / (1 + len(extras))


def episode_loss(
    support: torch.Tensor,
    y_support: torch.Tensor,
    queries: torch.Tensor,
    y_query: torch.Tensor,
    n_way: int,
    *,
    triplet: bool = False,
    margin: float = 0.5,
    icnn: bool = False,
    icnn_k: int = 4,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ProtoNet episode: (loss, query logits).

    loss = (CE + [Proto-Triplet] + [ICNN]) / (number of selected losses); CE alone when neither extra is
    selected. CE is on the logits -||q - c_k||^2 / temperature (the author's ProtoNet); the extras use
    sqrt(||.||^2 + 1e-6). ICNN is the official ``fullicnn`` variant: the score of support and query embeddings
    together, with ipc = shot + query neighbours searched (the images per class of the episode).
    """
    protos = prototypes(support, y_support, n_way)
    logits = proto_logits(queries, protos, temperature)
    ce = F.cross_entropy(logits, y_query)
    extras = [proto_triplet_loss(queries, y_query, protos, margin)] if triplet else []
    if icnn:
        labels = torch.cat([y_support, y_query])
        per_class = torch.bincount(labels, minlength=n_way)
        if len(per_class) != n_way or (per_class != per_class[0]).any():
            raise ValueError(
                f"the ICNN loss needs a balanced episode, got per-class counts {per_class.tolist()}"
            )
        ipc = int(per_class[0])  # official ipc = shot + query
        extras.append(icnn_loss(torch.cat([support, queries]), labels, k=icnn_k, ipc=ipc))
    return combined_loss(ce, extras), logits
