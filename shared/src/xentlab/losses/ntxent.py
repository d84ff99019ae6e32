"""NT-Xent, the SimCLR loss (Chen et al. 2020, Eq. 1); used by the gsimclr and core-tuning packages.

For a batch of B images and two augmented views (z_a[k], z_b[k]) of each, with cosine similarity sim and
temperature tau, anchor i (one of the 2B views) with positive p(i) (the other view of the same image):

    l_i = -log( exp(sim(z_i, z_p(i)) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau) )
    L   = (1 / 2B) * sum_i l_i

The denominator holds the positive and the 2B - 2 negatives (every view of every other image). G-SimCLR's official
notebooks build exactly this: logits [l_pos, l_neg] with ``get_negative_mask`` removing the two views of the
anchor's own image from the 2B candidates, ``SparseCategoricalCrossentropy(reduction=SUM)`` over both anchor
sets, divided by ``2 * BATCH_SIZE``; tau = 0.1.

This is SupCon (``xentlab.losses.supcon_loss``) with one label per image: P(i) = {p(i)}, A(i) = all k != i, and
the mean over the 2B anchors, so we call it rather than write the softmax again.
"""

from __future__ import annotations

import torch

from xentlab.data.cache import source_digest
from xentlab.losses.supcon import supcon_loss

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""

OFFICIAL_TEMPERATURE = 0.1
"""tau in both official training notebooks (``train_simclr(..., temperature=0.1)``)."""


def nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = OFFICIAL_TEMPERATURE) -> torch.Tensor:
    """NT-Xent of two (B, D) batches of projections; row k of ``z_a`` and of ``z_b`` are views of image k.

    The projections are L2-normalised here (the notebook's ``tf.math.l2_normalize``), so pass raw head outputs.
    """
    if z_a.ndim != 2 or z_a.shape != z_b.shape:
        raise ValueError(
            f"z_a and z_b must both be (B, D) of one shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )
    if z_a.shape[0] < 2:
        raise ValueError(
            f"NT-Xent needs B >= 2 images (negatives come from other images), got B={z_a.shape[0]}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    b = z_a.shape[0]
    image_ids = torch.arange(b, device=z_a.device).repeat(2)  # view k and view B+k share image id k
    return supcon_loss(torch.cat([z_a, z_b]), image_ids, temperature)
