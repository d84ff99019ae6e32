"""HD95 as the official TraCoCo evaluation defines it: ``medpy.metric.binary.hd95``.

``Code/VnetLA/validate.py`` and ``Code/UnetBRATS/validate.py`` (``calculate_metric_percase``) call
``metric.binary.hd95(pred, gt)``. medpy computes the surface distances of both directions (surface =
the voxels removed by one binary erosion with the 6-connected cross, Euclidean distance to the nearest
surface voxel of the other mask, voxel spacing optional), **pools** them (``numpy.hstack``) and takes
``numpy.percentile(..., 95)`` (linear interpolation). MONAI's ``compute_hausdorff_distance``
(``xentlab.metrics.segmentation.hd95``) instead takes the larger of the two *directed* 95th
percentiles; the two agree for symmetric errors and differ otherwise (e.g. a few stray voxels far from
the truth weigh 2x more in one directed list than in the pooled one).

The surfaces and distances come from MONAI's own primitives (``get_edge_surface_distance``: the same
erosion edges and exact Euclidean distances the core metrics use); only the pooling and the percentile
are medpy's. ``tests/test_tracoco_metrics.py`` checks the result against a float64 transcription of
medpy's ``__surface_distances`` built on ``scipy.ndimage.distance_transform_edt``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# The core's mask validation and empty-mask rule, so that this HD95 and the core's Dice/ASD accept
# and reject the same inputs (this function is meant to move next to them, as ``hd95(pooled=True)``).
from xentlab.metrics.segmentation import _empty_case, _pair, _quiet_monai
from xentlab.optional_imports import import_monai


def hd95_pooled(pred, gt, spacing: float | Sequence[float] | None = None) -> float:
    """medpy's HD95: the 95th percentile of the surface distances of both directions pooled.

    Empty masks follow ``xentlab.metrics.segmentation``: both empty -> 0.0, one empty -> nan (medpy
    raises; the official evaluation never calls it with an empty prediction, see ``case_metrics``).
    """
    p, g = _pair(pred, gt)
    special = _empty_case(p, g, 0.0, math.nan)
    if special is not None:
        return special
    import_monai()
    from monai.metrics.utils import get_edge_surface_distance

    with _quiet_monai():
        _, (pred_to_gt, gt_to_pred), _ = get_edge_surface_distance(
            p[0, 0].bool(), g[0, 0].bool(), distance_metric="euclidean", spacing=spacing, symmetric=True
        )
    pooled = np.concatenate(
        [np.asarray(pred_to_gt, dtype=np.float64), np.asarray(gt_to_pred, dtype=np.float64)]
    )
    return float(np.percentile(pooled, 95))  # numpy's default (linear) interpolation, as medpy
