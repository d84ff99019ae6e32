"""Training to convergence: the early-stopping rule on a VALIDATION sample, and the best checkpoint.

The paper trains every model of its ladders to (near) convergence, not to a shared token budget (its
§2: "our smallest models require 200 TPUv3 days to train to convergence" *[secondary: quoted by the
ri.k117.org reproducibility page]*). A model stopped at a fixed step count is scored on how fast its
shape learns, and at cpu scale that made the loss RISE with encoder depth (README, "previous run").
This rule replaces the fixed budget. It was written before the cpu rerun and is the same for every
model, seed and scale:

* the validation loss is measured every ``eval_every`` optimiser steps (never the test sample);
* training stops after the first evaluation at which the best validation loss of the last
  ``patience`` evaluations is not lower than the best loss before them by more than ``min_delta``
  (``plateaued``), or at ``max_steps`` (the cap), whichever comes first;
* the model that is scored is the best-validation checkpoint: the earliest evaluation with the lowest
  validation loss. The caller scores the test sample once, on that checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class StopRule:
    """The early-stopping rule.

    eval_every: optimiser steps between two validation evaluations.
    patience: evaluations without an improvement of more than ``min_delta`` before training stops.
    min_delta: the smallest drop of the best validation loss (nats per target token) that counts as
        an improvement.
    max_steps: the step cap; a multiple of ``eval_every``, so that the last step is evaluated too.
    """

    eval_every: int
    patience: int
    min_delta: float
    max_steps: int

    def __post_init__(self) -> None:
        if self.eval_every < 1 or self.patience < 1:
            raise ValueError(
                f"need eval_every >= 1 and patience >= 1, got {self.eval_every}, {self.patience}"
            )
        if not (math.isfinite(self.min_delta) and self.min_delta >= 0):
            raise ValueError(f"min_delta must be finite and >= 0, got {self.min_delta}")
        if self.max_steps < self.eval_every or self.max_steps % self.eval_every:
            raise ValueError(
                f"max_steps ({self.max_steps}) must be a positive multiple of eval_every ({self.eval_every})"
            )


def plateaued(history: Sequence[float], patience: int, min_delta: float) -> bool:
    """True when the last ``patience`` validation losses together improved on every earlier one by no
    more than ``min_delta``: ``min(last patience) >= min(the ones before) - min_delta``. False while
    there are not yet more than ``patience`` evaluations."""
    if len(history) <= patience:
        return False
    return min(history[-patience:]) >= min(history[:-patience]) - min_delta


@dataclass
class EarlyStopping:
    """Applies a ``StopRule`` to a run: feed it every validation loss with ``update``; it keeps the
    validation curve and an in-memory copy of the best-validation weights (``restore`` loads them)."""

    rule: StopRule
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    best_step: int = 0
    best_loss: float = math.inf
    converged: bool = False  # the rule fired (at or before the cap); False: stopped by the cap
    _best_state: dict | None = None

    def update(self, step: int, loss: float, model: torch.nn.Module) -> bool:
        """Record the validation ``loss`` after ``step`` steps; returns True when training must stop
        (the rule fired, or the cap is reached)."""
        if not math.isfinite(loss):
            raise FloatingPointError(f"validation loss is {loss} at step {step}")
        self.steps.append(step)
        self.losses.append(loss)
        if loss < self.best_loss:  # strict: ties keep the earlier checkpoint
            self.best_step, self.best_loss = step, loss
            self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if plateaued(self.losses, self.rule.patience, self.rule.min_delta):
            self.converged = True
            return True
        return step >= self.rule.max_steps

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best-validation weights into ``model``."""
        if self._best_state is None:
            raise RuntimeError("no validation loss was recorded: nothing to restore")
        model.load_state_dict(self._best_state)


__all__ = ["EarlyStopping", "StopRule", "plateaued"]
