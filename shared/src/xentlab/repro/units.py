"""The resume cache: one JSON file per finished (experiment, seed) unit.

A unit file is written atomically after its function returns, so it exists only for finished
units. Its key is a hash of (experiment, version, config, seed): a restarted run skips units whose
key matches and recomputes units whose config or code version changed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from numbers import Number
from pathlib import Path
from typing import Any

from xentlab.data.cache import atomic_write_json
from xentlab.repro.spec import Experiment


def unit_key(exp: Experiment, config: Mapping[str, Any], seed: int) -> str:
    blob = json.dumps(
        {"experiment": exp.name, "version": exp.version, "config": config, "seed": seed},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def unit_paths(units_dir: Path, exp: str, seed: int) -> tuple[Path, Path]:
    d = units_dir / exp
    return d / f"seed{seed}.json", d / f"seed{seed}.log.jsonl"


def load_finished(path: Path, key: str) -> dict | None:
    if not path.exists():
        return None
    try:
        unit = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # unreadable: recompute rather than trust it
    return unit if unit.get("key") == key else None


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None (strict JSON), tuples become lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Number):
        f = float(value)
        if isinstance(value, int):
            return int(value)
        return f if math.isfinite(f) else None
    if hasattr(value, "tolist"):
        return _clean(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    raise TypeError(f"unit output of type {type(value).__name__} is not JSON-serialisable")


def split_output(output: Mapping[str, Any]) -> tuple[dict, dict]:
    """Scalars (bool/int/float) are metrics; everything else is an artifact kept for figures."""
    if not isinstance(output, Mapping):
        raise TypeError(f"an experiment function must return a dict, got {type(output).__name__}")
    metrics, artifacts = {}, {}
    for k, v in output.items():
        if "/" in k:
            raise ValueError(f"metric name {k!r} must not contain '/' (it separates experiment and metric)")
        if hasattr(v, "item") and getattr(v, "ndim", None) == 0:
            v = v.item()
        if isinstance(v, bool | int | float):
            metrics[k] = _clean(v)
        else:
            artifacts[k] = _clean(v)
    return metrics, artifacts


def save_unit(path: Path, **fields: Any) -> dict:
    unit = _clean(fields)
    atomic_write_json(path, unit)
    return unit
