"""Binary segmentation metrics for 3D volumes: Dice, Jaccard, HD95 and ASD, computed by MONAI.

The conventions follow the evaluation code of the semi-supervised medical segmentation literature
(UA-MT, TraCoCo: ``medpy.metric.binary.{dc, jc, hd95, asd}`` on one predicted and one reference
mask, distances in voxels unless ``spacing`` is given):

* **Dice** ``2|P∩G| / (|P|+|G|)`` and **Jaccard** ``|P∩G| / |P∪G|`` (``monai.metrics.compute_dice``
  and ``compute_iou``).
* **HD95**: the 95th percentile Hausdorff distance between the two surfaces, by default medpy's: the
  95th percentile (numpy's linear interpolation) of both directions' surface distances **pooled**
  (MONAI's surfaces and distances, ``monai.metrics.utils.get_edge_surface_distance``). ``pooled=False``
  gives MONAI's ``compute_hausdorff_distance(percentile=95)``, the larger of the two *directed* 95th
  percentiles. The two agree when the errors are symmetric; otherwise they can differ a lot (TraCoCo's
  cpu volumes: MONAI's is 12-14% higher; a few stray voxels far from the truth count in one directed
  list of the pair but in only a small share of the pooled one).
* **ASD**: the average surface distance (``monai.metrics.compute_average_surface_distance``). With
  ``symmetric=False`` (the default) it is the mean distance from the *predicted* surface to the
  reference surface, which is what ``medpy.metric.binary.asd(result, reference)`` computes.

Surfaces are the voxels removed by one binary erosion (MONAI's ``get_mask_edges``), and distances
are Euclidean.

Empty masks: both empty gives a perfect score (Dice = Jaccard = 1, HD95 = ASD = 0); exactly one
empty gives Dice = Jaccard = 0 and undefined distances (``nan``). Callers that want another rule
(e.g. TraCoCo's official evaluation scores an empty prediction as all zeros) apply it themselves.

MONAI is imported lazily (``import xentlab`` stays light); see :func:`xentlab.optional_imports.import_monai`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import torch

from xentlab.optional_imports import import_monai


@contextmanager
def _quiet_monai():
    """Silence the FutureWarning MONAI raises about its *own* internal use of a deprecated argument."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*", category=FutureWarning)
        yield


def _as_mask(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim not in (2, 3):
        raise ValueError(f"{name} must be a 2D or 3D mask, got shape {tuple(t.shape)}")
    if t.dtype != torch.bool:
        if torch.is_floating_point(t) and not torch.all((t == 0) | (t == 1)):
            raise ValueError(f"{name} must be binary (0/1 or bool); threshold probabilities first")
        t = t != 0
    return t


def _pair(pred, gt) -> tuple[torch.Tensor, torch.Tensor]:
    p, g = _as_mask(pred, "pred"), _as_mask(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {tuple(p.shape)} vs {tuple(g.shape)}")
    # MONAI wants [batch, channel, *spatial] one-hot-like tensors; one foreground channel.
    return p[None, None].float(), g[None, None].float()


def _empty_case(p: torch.Tensor, g: torch.Tensor, perfect: float, undefined: float) -> float | None:
    """The value for the empty-mask cases of the module docstring, or None when both are non-empty."""
    p_empty, g_empty = not bool(p.any()), not bool(g.any())
    if p_empty and g_empty:
        return perfect
    if p_empty or g_empty:
        return undefined
    return None


def dice(pred, gt) -> float:
    """Dice coefficient 2|P∩G|/(|P|+|G|) of two binary masks."""
    p, g = _pair(pred, gt)
    special = _empty_case(p, g, 1.0, 0.0)
    if special is not None:
        return special
    import_monai()
    from monai.metrics import compute_dice

    return float(compute_dice(p, g, include_background=True).item())


def jaccard(pred, gt) -> float:
    """Jaccard index (IoU) |P∩G|/|P∪G| of two binary masks."""
    p, g = _pair(pred, gt)
    special = _empty_case(p, g, 1.0, 0.0)
    if special is not None:
        return special
    import_monai()
    from monai.metrics import compute_iou

    return float(compute_iou(p, g, include_background=True).item())


def hd95(pred, gt, spacing: float | Sequence[float] | None = None, *, pooled: bool = True) -> float:
    """95th percentile Hausdorff distance between the surfaces of two binary masks.

    ``pooled=True``: ``medpy.metric.binary.hd95``, ``numpy.percentile(hstack((d(pred -> gt), d(gt -> pred))),
    95)``; ``pooled=False``: MONAI's ``max(q95(d(pred -> gt)), q95(d(gt -> pred)))``.
    """
    p, g = _pair(pred, gt)
    special = _empty_case(p, g, 0.0, math.nan)
    if special is not None:
        return special
    import_monai()
    if not pooled:
        from monai.metrics import compute_hausdorff_distance

        with _quiet_monai():
            value = compute_hausdorff_distance(p, g, include_background=True, percentile=95, spacing=spacing)
        return float(value.item())
    from monai.metrics.utils import get_edge_surface_distance

    with _quiet_monai():
        _, (pred_to_gt, gt_to_pred), _ = get_edge_surface_distance(
            p[0, 0].bool(), g[0, 0].bool(), distance_metric="euclidean", spacing=spacing, symmetric=True
        )
    # MONAI returns float32 distances; pool them in float64 and take numpy's (linear) percentile, as medpy
    both = np.concatenate(
        [np.asarray(pred_to_gt, dtype=np.float64), np.asarray(gt_to_pred, dtype=np.float64)]
    )
    return float(np.percentile(both, 95))


def asd(pred, gt, spacing: float | Sequence[float] | None = None, symmetric: bool = False) -> float:
    """Average surface distance from the predicted surface to the reference (both ways if ``symmetric``)."""
    p, g = _pair(pred, gt)
    special = _empty_case(p, g, 0.0, math.nan)
    if special is not None:
        return special
    import_monai()
    from monai.metrics import compute_average_surface_distance

    with _quiet_monai():
        value = compute_average_surface_distance(
            p, g, include_background=True, symmetric=symmetric, spacing=spacing
        )
    return float(value.item())


def segmentation_metrics(pred, gt, spacing: float | Sequence[float] | None = None) -> dict[str, float]:
    """Dice, Jaccard, HD95 and ASD of one predicted mask against its reference, as a dict."""
    return {
        "dice": dice(pred, gt),
        "jaccard": jaccard(pred, gt),
        "hd95": hd95(pred, gt, spacing),
        "asd": asd(pred, gt, spacing),
    }
