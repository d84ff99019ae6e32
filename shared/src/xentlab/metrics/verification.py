"""Speaker-verification metrics: the equal error rate (EER) of a set of scored trials.

A trial is a pair of utterances with a score (higher = "same speaker") and a label (1 = target,
same speaker; 0 = non-target). Accepting every trial with score >= t gives a false-acceptance rate
FAR(t) (non-targets accepted) and a false-rejection rate FRR(t) = 1 - TPR(t) (targets rejected). The
EER is the rate where the two are equal. We take the ROC points of ``sklearn.metrics.roc_curve`` (all
distinct thresholds), find where FRR - FAR changes sign and interpolate linearly between those two
points (the usual convention, e.g. in the VoxCeleb/SpeechBrain scorers).
"""

from __future__ import annotations

import numpy as np


def eer(scores, labels) -> float:
    """Equal error rate in [0, 1] of ``scores`` (higher = more likely target) with binary ``labels``."""
    return eer_with_threshold(scores, labels)[0]


def eer_with_threshold(scores, labels) -> tuple[float, float]:
    """(EER, the score threshold where FAR = FRR, interpolated)."""
    from sklearn.metrics import roc_curve

    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length: {s.shape} vs {y.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 (non-target) or 1 (target)")
    if y.min() == y.max():
        raise ValueError("EER needs both target (1) and non-target (0) trials")
    far, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    frr = 1.0 - tpr
    diff = frr - far  # starts at +1 (accept nothing), ends at -1 (accept everything)
    k = int(np.flatnonzero(diff <= 0)[0])  # first point where FRR <= FAR
    if diff[k] == 0 or k == 0:
        return float(far[k]), float(thr[k])
    # linear interpolation between points k-1 (FRR > FAR) and k (FRR <= FAR)
    w = diff[k - 1] / (diff[k - 1] - diff[k])
    rate = far[k - 1] + w * (far[k] - far[k - 1])
    t0 = thr[k - 1] if np.isfinite(thr[k - 1]) else thr[k]
    return float(rate), float(t0 + w * (thr[k] - t0))


def cosine_trials(embeddings, ids) -> tuple[np.ndarray, np.ndarray]:
    """Every unordered pair (i < j) as a trial: (cosine similarity, 1 if ids[i] == ids[j])."""
    e = np.asarray(embeddings, dtype=np.float64)
    ids = np.asarray(ids)
    if e.ndim != 2 or len(e) != len(ids):
        raise ValueError(f"embeddings must be (N, D) with N = len(ids), got {e.shape} and {len(ids)}")
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("an embedding has zero norm: cosine similarity is undefined")
    e = e / norms
    i, j = np.triu_indices(len(e), k=1)
    return np.einsum("nd,nd->n", e[i], e[j]), (ids[i] == ids[j]).astype(np.int64)
