"""Patience-based early stopping: the rule of Keras' ``EarlyStopping`` (strict improvement by > min_delta).

After every evaluation the caller passes the monitored value (a validation loss, or an AUC with
``mode="max"``). The *reference* is the best value seen so far that counted as an improvement; a value
improves on it when it is lower than ``reference - min_delta`` (``mode="min"``) or higher than
``reference + min_delta`` (``mode="max"``). Training should stop once ``patience`` evaluations in a row
have not improved. With ``min_delta > 0`` the reference moves only on a significant improvement, so a
slow drift of many small gains still runs out of patience (Keras semantics).

FuxiCTR's trainer (``checkpoint_and_earlystop``) counts a value equal to ``best + min_delta`` as an
improvement (>=, not >): ``ties_improve=True`` (fcn). The two rules differ only on an exact tie.

A NaN never improves (every comparison with NaN is false), so a diverged run runs out of patience
instead of becoming the reference. Keeping the best weights is the caller's job: ``improved`` says
whether the last ``update`` moved the reference.
"""

from __future__ import annotations

import math

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """``update(value) -> bool``: record one evaluation; True once ``patience`` in a row did not improve.

    patience: evaluations without improvement before stopping (>= 1).
    min_delta: the smallest change of the monitored value that counts as an improvement (>= 0).
    mode: "min" for a loss, "max" for a score such as AUC.
    ties_improve: a value exactly ``min_delta`` better than the reference counts as an improvement
        (FuxiCTR); False (Keras): it must be strictly more than ``min_delta`` better.
    """

    def __init__(
        self, patience: int, min_delta: float = 0.0, mode: str = "min", ties_improve: bool = False
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an int >= 1, got {patience!r}")
        if not (math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta must be finite and >= 0, got {min_delta!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.patience, self.min_delta, self.mode = patience, float(min_delta), mode
        self.ties_improve = bool(ties_improve)
        self.best = math.inf if mode == "min" else -math.inf  # the reference
        self.bad = 0  # evaluations in a row without improvement
        self.improved = False  # whether the last update moved the reference

    def update(self, value: float) -> bool:
        # compared with the threshold as Keras / FuxiCTR write it (not as a difference, which rounds
        # differently); every comparison with NaN is false
        if self.mode == "min":
            threshold = self.best - self.min_delta
            self.improved = value <= threshold if self.ties_improve else value < threshold
        else:
            threshold = self.best + self.min_delta
            self.improved = value >= threshold if self.ties_improve else value > threshold
        if self.improved:
            self.best, self.bad = float(value), 0
        else:
            self.bad += 1
        return self.bad >= self.patience
