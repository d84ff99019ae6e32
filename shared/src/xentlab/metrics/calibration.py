"""Calibration metrics on top-1 confidence: reliability bins, ECE with any bin count, Brier scores,
NLL, the AUROC of confidence for separating correct from wrong predictions, and a reliability plot.

Binning follows Guo et al. (2017) and the reference code of most calibration papers: ``n_bins``
equal-width bins over [0, 1], a sample with confidence c falls in bin ``(lo, hi]`` (``c > lo and
c <= hi``; a confidence of exactly 0 is put in the first bin). ECE = sum_b (n_b / N) |acc_b - conf_b|.
``ece`` agrees with ``xentlab.metrics.ece`` (torchmetrics) up to samples lying exactly on a bin edge,
and is what ``xentlab.metrics.ece`` would be computed from when you also want the bins.

Everything accepts torch tensors or numpy arrays and returns Python floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "ReliabilityBins",
    "brier_score",
    "brier_top1",
    "calibration_report",
    "confidence_correct",
    "correctness_auroc",
    "ece",
    "ece_from_confidence",
    "nll",
    "plot_reliability",
    "reliability_bins",
    "reliability_figure",
]


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().double().numpy() if a.is_floating_point() else a.detach().cpu().numpy()
    return np.asarray(a)


def _check_probs(probs: np.ndarray, target: np.ndarray | None = None) -> None:
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, C), got shape {probs.shape}")
    if probs.shape[0] == 0:
        raise ValueError("probs is empty")
    if target is not None and (target.ndim != 1 or len(target) != len(probs)):
        raise ValueError(f"target must be (N,) with N={len(probs)}, got shape {target.shape}")


def confidence_correct(probs, target) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 confidence (float64) and correctness (bool) per sample."""
    p, t = _np(probs).astype(np.float64), _np(target).astype(np.int64)
    _check_probs(p, t)
    return p.max(axis=1), p.argmax(axis=1) == t


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin counts, mean confidence and accuracy (NaN for empty bins) of equal-width bins."""

    edges: np.ndarray  # (B + 1,)
    count: np.ndarray  # (B,)
    confidence: np.ndarray  # (B,)
    accuracy: np.ndarray  # (B,)

    @property
    def n(self) -> int:
        return int(self.count.sum())

    def ece(self) -> float:
        """sum_b (n_b / N) |acc_b - conf_b| over non-empty bins."""
        m = self.count > 0
        return float(np.sum(self.count[m] / self.n * np.abs(self.accuracy[m] - self.confidence[m])))

    def mce(self) -> float:
        """max_b |acc_b - conf_b| over non-empty bins."""
        m = self.count > 0
        return float(np.max(np.abs(self.accuracy[m] - self.confidence[m])))


def reliability_bins(confidence, correct, n_bins: int = 15) -> ReliabilityBins:
    """Bin top-1 confidences into ``n_bins`` equal-width bins ``(lo, hi]`` over [0, 1]."""
    conf, corr = _np(confidence).astype(np.float64).ravel(), _np(correct).astype(np.float64).ravel()
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if len(conf) != len(corr) or len(conf) == 0:
        raise ValueError(
            f"need equal, non-zero numbers of confidences and correctness flags ({len(conf)}, {len(corr)})"
        )
    if np.any(conf < 0) or np.any(conf > 1 + 1e-6) or not np.all(np.isfinite(conf)):
        raise ValueError("confidences must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin b holds edges[b] < c <= edges[b+1]: searchsorted(side="left") gives the first edge >= c
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / count
        acc = np.bincount(idx, weights=corr, minlength=n_bins) / count
    return ReliabilityBins(edges, count.astype(np.int64), mean_conf, acc)


def ece_from_confidence(confidence, correct, n_bins: int = 15) -> float:
    """ECE of given confidences and correctness flags."""
    return reliability_bins(confidence, correct, n_bins).ece()


def ece(probs, target, n_bins: int = 15) -> float:
    """Top-1 ECE of class probabilities ``probs`` (N, C) with ``n_bins`` equal-width bins."""
    conf, corr = confidence_correct(probs, target)
    return ece_from_confidence(conf, corr, n_bins)


def brier_score(probs, target) -> float:
    """Multi-class Brier score: mean over samples of sum_k (p_k - 1[y = k])^2 (Brier 1950), in [0, 2]."""
    p, t = _np(probs).astype(np.float64), _np(target).astype(np.int64)
    _check_probs(p, t)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(t)), t] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def brier_top1(probs, target) -> float:
    """Top-1 Brier score mean((conf - correct)^2): the 'BS' of the correctness-aware calibration code."""
    conf, corr = confidence_correct(probs, target)
    return float(np.mean((conf - corr) ** 2))


def nll(probs, target, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the true class."""
    p, t = _np(probs).astype(np.float64), _np(target).astype(np.int64)
    _check_probs(p, t)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(t)), t], eps, None))))


def correctness_auroc(probs, target) -> float:
    """AUROC of top-1 confidence as a score for 'the prediction is correct' (scikit-learn).

    NaN when every prediction is right, or every one wrong (the AUROC is undefined then).
    """
    from sklearn.metrics import roc_auc_score

    conf, corr = confidence_correct(probs, target)
    if corr.all() or not corr.any():
        return float("nan")
    return float(roc_auc_score(corr.astype(int), conf))


def calibration_report(probs, target, bins: tuple[int, ...] = (15, 25)) -> dict[str, float]:
    """accuracy, ECE at each bin count (``ece15``, ``ece25``, ...), Brier, top-1 Brier, NLL, AUROC."""
    conf, corr = confidence_correct(probs, target)
    out = {"acc": float(corr.mean())}
    for b in bins:
        out[f"ece{b}"] = ece_from_confidence(conf, corr, b)
    out.update(
        brier=brier_score(probs, target),
        brier_top1=float(np.mean((conf - corr) ** 2)),
        nll=nll(probs, target),
        auroc=correctness_auroc(probs, target),
        mean_conf=float(conf.mean()),
    )
    return out


def plot_reliability(
    ax, bins: ReliabilityBins, *, label: str | None = None, color=None, show_gap: bool = True
):
    """Draw a reliability diagram on a matplotlib ``ax``: per-bin accuracy as bars, the diagonal, and
    (``show_gap``) the gap to each bin's mean confidence as a hatched bar. Returns ``ax``."""
    width = np.diff(bins.edges)
    left = bins.edges[:-1]
    m = bins.count > 0
    ax.bar(left[m], bins.accuracy[m], width=width[m], align="edge", alpha=0.55, color=color,
           edgecolor="black", linewidth=0.4, label=f"{label} (ECE {bins.ece():.3f})" if label else None)  # fmt: skip
    if show_gap:
        gap = bins.confidence[m] - bins.accuracy[m]
        ax.bar(left[m], gap, bottom=bins.accuracy[m], width=width[m], align="edge", fill=False,
               hatch="//", edgecolor="tab:red", linewidth=0.4)  # fmt: skip
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    if label:
        ax.legend(loc="upper left", fontsize=7)
    return ax


def reliability_figure(
    panels: dict[str, ReliabilityBins], path: str | Path, *, ncols: int = 4, title: str = ""
):
    """One reliability diagram per entry of ``panels`` in a grid, saved to ``path`` (Agg). Returns the path."""
    import matplotlib.pyplot as plt

    n = len(panels)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 3.0 * nrows), squeeze=False)
    for ax, (name, b) in zip(axes.flat, panels.items()):
        plot_reliability(ax, b)
        ax.set_title(f"{name}\nECE {b.ece():.3f}", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
