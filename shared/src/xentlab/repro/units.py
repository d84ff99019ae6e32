"""The resume cache: one JSON file per finished (experiment, seed) unit.

A unit file is written atomically after its function returns, so it exists only for finished
units. Its key is a hash of (experiment, version, config, seed): a restarted run skips units whose
key matches and recomputes units whose config or code version changed.

Besides its numbers, a unit file records how it was computed: ``wall_s``, ``cpu_s``, ``finished_at``
and (units computed since provenance records exist, ``PROVENANCE_FIELD``) ``peak_rss_mb``, the
computing process's peak resident memory when the unit finished (an UPPER BOUND for the unit: that
process may have imported things or run other units first), ``peak_children_rss_mb`` (only when the
unit waited for child processes of its own; the largest child the process ever waited for),
``peak_cuda_mb`` (CUDA units), ``git``, the commit and dirty flag of the repository holding the
package when the run started (null outside a git checkout), and ``host`` (``environment.unit_host``:
CPU model, the ISA torch dispatches on, torch version, CUDA device), recorded since some numbers
(bf16 on CPU) depend on it. None of these is part of the key, so
unit files written before they existed resume as they are.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from numbers import Number
from pathlib import Path
from typing import Any

from xentlab.data.cache import atomic_write_json
from xentlab.repro.spec import Experiment

PROVENANCE_FIELD = "peak_rss_mb"  # every unit computed with provenance records has it


def unit_key(exp: Experiment, config: Mapping[str, Any], seed: int, *, scale: str) -> str:
    """The resume key of one unit: (experiment, its version at ``scale``, config, seed)."""
    blob = json.dumps(
        {"experiment": exp.name, "version": exp.version_at(scale), "config": config, "seed": seed},
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


def _max_of(units: Sequence[Mapping[str, Any]], name: str) -> float | None:
    values = [u[name] for u in units if isinstance(u.get(name), int | float)]
    return max(values) if values else None


def _finished_span(units: Sequence[Mapping[str, Any]]) -> dict | None:
    """The first and last ``finished_at`` (ordered as times; a stamp that does not parse is left out)."""
    stamps = []
    for u in units:
        try:
            stamps.append((datetime.strptime(u["finished_at"], "%Y-%m-%dT%H:%M:%S%z"), u["finished_at"]))
        except (KeyError, TypeError, ValueError):
            continue
    if not stamps:
        return None
    return {"first": min(stamps)[1], "last": max(stamps)[1]}


def provenance_summary(units: Sequence[Mapping[str, Any]]) -> dict:
    """Where and how heavily ``units`` (the unit records a report uses) were computed.

    ``with_provenance`` / ``without_provenance``: units that record it, and units written before it
    was recorded; ``git``: each (commit, dirty) the recording units were computed at, with its
    number of units, most units first (commit null: outside a git checkout); ``peak_rss_mb`` (and
    ``peak_children_rss_mb``, ``peak_cuda_mb``): the largest value over the units, an upper bound
    for every unit that records it (null when none does); ``finished_at``: the first and last
    unit to finish, over all units."""
    recorded = [u for u in units if PROVENANCE_FIELD in u]
    commits = Counter(
        (g.get("commit"), g.get("dirty")) if isinstance(g, Mapping) else (None, None)
        for g in (u.get("git") for u in recorded)
    )
    order = sorted(commits.items(), key=lambda kv: (-kv[1], str(kv[0][0]), str(kv[0][1])))
    return {
        "units": len(units),
        "with_provenance": len(recorded),
        "without_provenance": len(units) - len(recorded),
        "git": [{"commit": c, "dirty": d, "units": n} for (c, d), n in order],
        "peak_rss_mb": _max_of(recorded, "peak_rss_mb"),
        "peak_children_rss_mb": _max_of(recorded, "peak_children_rss_mb"),
        "peak_cuda_mb": _max_of(recorded, "peak_cuda_mb"),
        "finished_at": _finished_span(units),
    }
