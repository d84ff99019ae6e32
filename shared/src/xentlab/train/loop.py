"""A small seeded training loop: progress bar, NaN guard, periodic checkpoints and exact resume.

Batches come from ``batch_fn(step)``, a function of the step index only, so a resumed run sees
exactly the batches an uninterrupted run would have seen (see ``EpochSampler``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from xentlab.data.cache import source_digest
from xentlab.train.seeding import rng_state, set_rng_state

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite."""


class EpochSampler:
    """Mini-batch indices for step ``s``: a fresh seeded permutation per epoch, deterministic in s."""

    def __init__(self, n: int, batch_size: int, seed: int, drop_last: bool = True):
        if batch_size < 1 or n < 1:
            raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
        self.n, self.batch_size, self.seed = n, min(batch_size, n), seed
        self.per_epoch = n // self.batch_size if drop_last else math.ceil(n / self.batch_size)
        self._cache: tuple[int, torch.Tensor] | None = None

    def __call__(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.per_epoch)
        if self._cache is None or self._cache[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._cache = (epoch, torch.randperm(self.n, generator=g))
        return self._cache[1][i * self.batch_size : (i + 1) * self.batch_size]


@dataclass
class TrainState:
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_on_nan: bool = False


def save_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: TrainState
) -> None:
    """Weights as safetensors, optimizer/RNG/step with torch.save; each file replaced atomically."""
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / "model.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    os.replace(tmp, path / "model.safetensors")
    tmp = path / "state.pt.tmp"
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "step": state.step,
            "history": state.history,
            "rng": rng_state(),
        },
        tmp,
    )
    os.replace(tmp, path / "state.pt")  # written last: its presence marks a complete checkpoint


def load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> TrainState | None:
    if not (path / "state.pt").exists():
        return None
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    blob = torch.load(path / "state.pt", weights_only=False)
    optimizer.load_state_dict(blob["optimizer"])
    set_rng_state(blob["rng"])
    return TrainState(step=blob["step"], history=blob["history"])


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    batch_fn: Callable[[int], Any],
    steps: int,
    *,
    log_every: int = 0,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint_dir: Path | None = None,
    checkpoint_every: int = 0,
    on_nan: str = "raise",
    grad_clip: float | None = None,
    progress: bool = True,
    desc: str = "train",
) -> TrainState:
    """Run ``steps`` optimiser steps of ``loss_fn(model, batch_fn(step))``.

    ``on_nan="raise"`` raises NonFiniteLossError at the first non-finite loss (before the step is
    taken); ``"stop"`` returns with ``stopped_on_nan=True`` (for experiments where divergence is
    the measured outcome). With ``checkpoint_dir``, training resumes from the last checkpoint.
    """
    if on_nan not in ("raise", "stop"):
        raise ValueError(f"on_nan must be 'raise' or 'stop', got {on_nan!r}")
    state = (load_checkpoint(checkpoint_dir, model, optimizer) if checkpoint_dir else None) or TrainState()
    model.train()
    bar = tqdm(range(state.step, steps), desc=desc, leave=False, disable=not progress or not os.isatty(2))
    for step in bar:
        loss = loss_fn(model, batch_fn(step))
        if not torch.isfinite(loss):
            if on_nan == "raise":
                raise NonFiniteLossError(f"loss is {loss.item()} at step {step}")
            state.stopped_on_nan = True
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        state.step = step + 1
        if log_every and (state.step % log_every == 0 or state.step == steps):
            row = {"loss": loss.item()}
            state.history.append({"step": state.step, **row})
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            if on_log:
                on_log(state.step, row)
        if checkpoint_dir and checkpoint_every and state.step % checkpoint_every == 0:
            save_checkpoint(checkpoint_dir, model, optimizer, state)
    return state
