"""Gradient filtering and vocabulary sorting (Cut Cross-Entropy, Wijmans et al. 2025, Sec. 4.3).

The backward of cross-entropy w.r.t. the logits of token i is

    G_ij = softmax(z_i)_j - [j == x_i]

and it is multiplied into dE = G C and dC = G^T E.  Most softmax entries of a large-vocabulary
LM are far below the precision of a bf16 accumulation, so CCE skips a whole (token block x
vocabulary block) tile of G when every |G_ij| in it is below ``filter_eps``.  The default
threshold is the dtype's machine epsilon / 32 (official ``_handle_eps``): 2^-12 for bf16,
2^-15 for fp16, 2^-28 for fp32.

Tiles are more often entirely negligible when the vocabulary is walked in the order of the
average logit over the batch (``argsort(mean_i z_ij)``), which groups the few likely tokens
into few blocks.  These helpers are shared by the PyTorch path (which applies the same tile
mask to G) and by the experiments that measure the skip rate.
"""

from __future__ import annotations

import torch

from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""

# Tile of G that the backward tests and skips as a unit.  128 x 128 is the official backward
# kernel's best config (BLOCK_B=128, BLOCK_V=128); the PyTorch path uses the same tile so that
# filtering means the same thing in every implementation.
FILTER_BLOCK_B = 128
FILTER_BLOCK_V = 128


def resolve_filter_eps(filter_eps: float | str | None, dtype: torch.dtype) -> float | None:
    """``"auto"`` -> eps(dtype)/32 (the official default); ``None`` -> no filtering (exact)."""
    if filter_eps is None:
        return None
    if isinstance(filter_eps, str):
        if filter_eps != "auto":
            raise ValueError(f"filter_eps must be 'auto', a float >= 0 or None, got {filter_eps!r}")
        return torch.finfo(dtype).eps / 32
    if isinstance(filter_eps, bool) or not isinstance(filter_eps, int | float):
        raise TypeError(f"filter_eps must be 'auto', a float >= 0 or None, got {type(filter_eps).__name__}")
    if filter_eps < 0:
        raise ValueError(f"filter_eps must be >= 0, got {filter_eps}")
    return float(filter_eps)


def _tile_views(g: torch.Tensor, block_b: int, block_v: int):
    """(tile-row slice, tile-col slice, 4-D view) for the at most four regions of ``g`` (full
    tiles, ragged last rows, ragged last columns, the corner).  Splitting a dimension is always a
    view, so no region is copied."""
    k, w = g.shape
    kf, wf = k // block_b * block_b, w // block_v * block_v
    nb, nv = kf // block_b, wf // block_v
    for r0, r1, tr, bb in ((0, kf, slice(0, nb), block_b), (kf, k, slice(nb, nb + 1), k - kf)):
        for c0, c1, tc, bv in ((0, wf, slice(0, nv), block_v), (wf, w, slice(nv, nv + 1), w - wf)):
            if r1 > r0 and c1 > c0:
                yield tr, tc, g[r0:r1, c0:c1].unflatten(0, (-1, bb)).unflatten(2, (-1, bv))


def tile_keep_mask(g: torch.Tensor, eps: float, block_b: int = FILTER_BLOCK_B, block_v: int = FILTER_BLOCK_V):
    """Boolean (ceil(K/block_b), ceil(W/block_v)) mask: True where a tile of ``g`` (K x W) has
    some |g| >= eps and must be kept; False where the whole tile is below eps and is skipped.
    Tiles start at row 0 and column 0; the last ones may be ragged, as the kernel's masked tiles."""
    k, w = g.shape
    keep = torch.empty(-(-k // block_b), -(-w // block_v), dtype=torch.bool, device=g.device)
    for tr, tc, view in _tile_views(g, block_b, block_v):
        # max |g| without an |g| temporary: max(max g, -min g)
        keep[tr, tc] = torch.maximum(view.amax(dim=(1, 3)), view.amin(dim=(1, 3)).neg_()) >= eps
    return keep


def apply_tile_mask(
    g: torch.Tensor, keep: torch.Tensor, block_b: int = FILTER_BLOCK_B, block_v: int = FILTER_BLOCK_V
) -> torch.Tensor:
    """Zero, in place, the tiles of ``g`` where ``keep`` is False."""
    for tr, tc, view in _tile_views(g, block_b, block_v):
        view.mul_(keep[tr, tc][:, None, :, None])
    return g


def vocab_order(logit_mean: torch.Tensor) -> torch.Tensor:
    """The order in which the backward walks the vocabulary: ascending mean logit (official
    ``argsort(logit_avg)``), so that the likely tokens of this batch share a few blocks."""
    return torch.argsort(logit_mean)
