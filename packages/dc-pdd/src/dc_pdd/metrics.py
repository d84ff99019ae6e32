"""Detection metrics of a membership score: AUC, TPR at 5% FPR, best accuracy.

All three come from ``xentlab.metrics.membership`` (the threshold attack "member iff score >= t").
TPR@5%FPR follows the official ``evaluate`` in ``com_det_sco.py``: the TPR at the last ROC point whose
FPR is strictly below 0.05 (``tpr[np.where(fpr < 0.05)[0][-1]]``); ROC points are ordered by
increasing FPR and TPR, so that is the largest TPR reachable with FPR < 0.05, which
``xentlab.metrics.membership.tpr_at_fpr`` computes on the full ROC.
"""

from __future__ import annotations

import numpy as np

from xentlab.metrics.membership import score_threshold_mia, tpr_at_fpr


def _split(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"scores and labels must be 1-d and aligned, got {s.shape} and {y.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise ValueError("labels must be 0 (non-member) or 1 (member)")
    if y.sum() == 0 or y.sum() == y.size:
        raise ValueError("need at least one member and one non-member")
    return s[y == 1], s[y == 0]


def roc_points(scores, labels) -> tuple[list[float], list[float]]:
    """(fpr, tpr) of the ROC curve, for figures."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(labels), np.asarray(scores, dtype=np.float64))
    return fpr.tolist(), tpr.tolist()


def detection_metrics(scores, labels, fpr_max: float = 0.05) -> dict[str, float]:
    """{"auc", "tpr5", "acc"} of the rule "member iff score >= t" (higher score = member)."""
    s_in, s_out = _split(scores, labels)
    res = score_threshold_mia(s_in, s_out)
    return {"auc": res.auc, "tpr5": tpr_at_fpr(s_in, s_out, fpr_max), "acc": res.accuracy}
