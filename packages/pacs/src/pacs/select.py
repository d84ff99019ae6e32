"""Learning-rate selection on the validation split, the same way for PACS and GRPO.

Every (method, lr) of the grid is its own experiment (one unit per seed) that reports the
validation pass@1 (``val_pass@1``) and the held-out metrics. Per seed and per method, the lr with
the highest validation pass@1 is selected (ties: the first lr of the grid); the reported held-out
numbers of the method are those of the selected lr. The selection only ever sees the ``val_*``
metrics: ``validation_only`` strips everything else before ``select_lr`` is called, so a held-out
number cannot influence which lr is chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

SELECT_METRIC = "val_pass@1"
VAL_PREFIX = "val_"


def exp_name(method: str, lr: float) -> str:
    """The experiment of one grid point, e.g. ``pacs-lr5.0e-05``."""
    return f"{method}-lr{lr:.1e}"


def validation_only(metrics: Mapping[str, float]) -> dict[str, float]:
    """The ``<experiment>/val_*`` entries of one seed's metrics, nothing else."""
    return {k: v for k, v in metrics.items() if k.rpartition("/")[2].startswith(VAL_PREFIX)}


def select_lr(val_metrics: Mapping[str, float], method: str, lrs: Sequence[float]) -> float:
    """The lr of ``lrs`` with the highest validation pass@1 of ``method`` (ties: the earlier lr)."""
    if not lrs:
        raise ValueError("the lr grid is empty")
    best_lr, best = None, None
    for lr in lrs:
        score = float(val_metrics[f"{exp_name(method, lr)}/{SELECT_METRIC}"])
        if best is None or score > best:
            best_lr, best = lr, score
    return float(best_lr)


def selected_lr_fn(method: str, lrs: Sequence[float]) -> Callable[[Mapping[str, float]], float]:
    """Derived metric: the lr selected for ``method`` on this seed's validation metrics."""
    return lambda m: select_lr(validation_only(m), method, lrs)


def selected_metric_fn(
    method: str, lrs: Sequence[float], metric: str
) -> Callable[[Mapping[str, float]], float]:
    """Derived metric: ``metric`` of the run whose lr was selected on validation (same seed)."""

    def fn(m: Mapping[str, float]) -> float:
        lr = select_lr(validation_only(m), method, lrs)
        return m[f"{exp_name(method, lr)}/{metric}"]

    return fn
