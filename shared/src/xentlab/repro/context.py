"""What an experiment function sees of the run: device, scale, seed, a step logger, progress bars."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm


@dataclass
class RunContext:
    scale: str
    seed: int
    device: torch.device
    experiment: str
    unit_dir: Path
    log_path: Path
    show_progress: bool = True
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    def log(self, step: int | None = None, **metrics: Any) -> None:
        """Append one line to this unit's step log (gathered into metrics.jsonl at the end)."""
        row = {
            "experiment": self.experiment,
            "seed": self.seed,
            "step": step,
            "t": round(time.perf_counter() - self._t0, 3),
        }
        for k, v in metrics.items():
            if isinstance(v, torch.Tensor):
                v = v.item()
            if isinstance(v, float) and not math.isfinite(v):
                v = None  # strict JSON has no NaN/inf
            row[k] = v
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def progress(self, iterable: Iterable | None = None, *, desc: str = "", total: int | None = None, **kw):
        """A tqdm bar, shown only on an interactive terminal in the main process."""
        return tqdm(
            iterable,
            desc=f"{self.experiment}[{self.seed}] {desc}".strip(),
            total=total,
            leave=False,
            disable=not (self.show_progress and sys.stderr.isatty()),
            dynamic_ncols=True,
            **kw,
        )
