"""Last-iteration evaluation on held-out volumes: sliding window, then Dice / Jaccard / HD95 / ASD.

As the official ``test_all_case``: each test volume is min-max normalised, predicted with a sliding
window (softmax averaged over windows, argmax), and scored per case; the reported numbers are the
means over cases. A case with an empty prediction scores (0, 0, 0, 0) as in the official code
(``if np.sum(prediction) == 0: single_metric = (0, 0, 0, 0)``); how many such cases occurred is
reported alongside.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from tracoco.augment import normalise
from tracoco.models import predict_volume
from tracoco.trainer import VolumeSource

METRICS = ("dice", "jaccard", "hd95", "asd")


def stride_overlap(roi: Sequence[int], stride: Sequence[int]) -> tuple[float, ...]:
    """The MONAI ``overlap`` per axis that gives a window step of exactly ``stride`` voxels.

    MONAI steps by ``int(roi * (1 - overlap))``; aiming at ``stride + 0.5`` survives the floor.
    """
    if any(s < 1 or s > r for s, r in zip(stride, roi)):
        raise ValueError(f"strides {tuple(stride)} must lie in [1, roi] for roi {tuple(roi)}")
    return tuple(1.0 - (s + 0.5) / r if s < r else 0.0 for s, r in zip(stride, roi))


def case_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """The four metrics of one case, as the official ``calculate_metric_percase`` (medpy ``dc``, ``jc``,
    ``hd95``, ``asd(pred, gt)``), with the official empty-prediction rule.

    Dice, Jaccard and the directed ASD (prediction -> truth) are the core's metrics, which match medpy's;
    HD95 is the core's default, medpy's pooled definition (up to experiment version 1 it was MONAI's max of
    the two directed 95th percentiles, ``hd95(..., pooled=False)``).
    """
    from xentlab.metrics.segmentation import asd, dice, hd95, jaccard

    if not pred.any():
        return dict.fromkeys(METRICS, 0.0)
    p, g = pred.astype(bool), gt.astype(bool)
    return {"dice": dice(p, g), "jaccard": jaccard(p, g), "hd95": hd95(p, g), "asd": asd(p, g)}


def evaluate(
    nets: Sequence[nn.Module],
    source: VolumeSource,
    roi: Sequence[int],
    stride: Sequence[int] | None = None,
    device: torch.device | str = "cpu",
    keep_prediction: int | None = None,
) -> dict:
    """Score ``nets`` (each alone, and their softmax average when there are two) on every volume.

    Returns ``{"<name>/<metric>": mean, "<name>/empty": count, "predictions": {name: label map of
    volume keep_prediction}}`` with names ``m1``, ``m2`` and ``ens``.
    """
    roi = tuple(int(r) for r in roi)
    overlap = stride_overlap(roi, stride) if stride is not None else 0.5
    names = ["m1", "m2"][: len(nets)]
    if len(nets) == 2:
        names.append("ens")
    per_case: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    empty = dict.fromkeys(names, 0)
    kept: dict[str, np.ndarray] = {}
    for i in range(len(source)):
        image, label = source[i]
        x = torch.from_numpy(normalise(image)).to(device)
        probs = []
        preds = {}
        for name, net in zip(names, nets):
            pred, p_fg = predict_volume(net, x, roi, overlap)
            preds[name] = pred.cpu().numpy()
            probs.append(p_fg)
        if len(nets) == 2:
            preds["ens"] = ((probs[0] + probs[1]) / 2 > 0.5).long().cpu().numpy()
        for name in names:
            per_case[name].append(case_metrics(preds[name], np.asarray(label)))
            empty[name] += int(not preds[name].any())
        if keep_prediction is not None and i == keep_prediction:
            kept = {n: preds[n].astype(np.uint8) for n in names}
    out: dict = {}
    for name in names:
        for metric in METRICS:
            out[f"{name}/{metric}"] = float(np.mean([c[metric] for c in per_case[name]]))
        out[f"{name}/empty"] = empty[name]
    out["predictions"] = kept
    return out
