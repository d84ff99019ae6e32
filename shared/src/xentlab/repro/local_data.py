"""Where ``--scale full`` finds the paper's datasets and models: local paths only, never a download.

Each package names its inputs by a config key with an environment variable as the fallback
(``cfg["data_root"]`` or ``$LDR_DATA_ROOT``, ``cfg["model"]`` or ``$PACS_MODEL``). A missing or wrong
path stops the run with one line that names the variable and what belongs there.

The resume key of a unit hashes its config, not what an environment variable points to. So the
runner records every path a unit resolved here (``record_resolved``) and stores them in the unit
file; on resume a unit whose inputs now resolve elsewhere (``$NMT_SCALING_DATA`` pointed at another
corpus, same output folder) is recomputed instead of reused (``resolved_changed``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xentlab.repro.spec import ReproError


class MissingLocalData(ReproError, FileNotFoundError):
    """A full-scale input is not set or not on disk (the CLI prints it on one line)."""


_recorded: dict[str, str] | None = None  # "key|ENV" -> resolved path, while a unit runs


def _label(key: str, env: str) -> str:
    return f"{key}|{env}"


def _resolve(cfg: Mapping[str, Any], key: str, env: str) -> str | None:
    value = cfg.get(key) or os.environ.get(env)
    return str(Path(value).expanduser()) if value else None


def record_resolved() -> None:
    """Start recording the paths ``local_path`` resolves (the runner calls it before each unit)."""
    global _recorded
    _recorded = {}


def take_resolved() -> dict[str, str]:
    """The paths resolved since ``record_resolved`` ("key|ENV" -> path), and stop recording."""
    global _recorded
    out, _recorded = _recorded or {}, None
    return out


def resolved_changed(cfg: Mapping[str, Any], recorded: Mapping[str, str]) -> list[str]:
    """The inputs of a finished unit that now resolve to a different path (or none): "ENV: old -> new"."""
    changed = []
    for label, old in recorded.items():
        key, _, env = label.partition("|")
        new = _resolve(cfg, key, env)
        if new != old:
            changed.append(f"{env}: {old} -> {new}")
    return changed


def local_path(
    cfg: Mapping[str, Any], key: str, env: str, *, needs: str, required: bool = True, must_exist: bool = True
) -> Path | None:
    """``cfg[key]`` if set, else ``$env``, as a Path (``~`` expanded).

    ``needs`` says what the path must hold, for the error. Unset: MissingLocalData when ``required``,
    else None. Set but absent: MissingLocalData when ``must_exist`` (a loader that reports the
    expected file layout itself can pass ``must_exist=False``).
    """
    value = cfg.get(key) or os.environ.get(env)
    if value and _recorded is not None:
        _recorded[_label(key, env)] = str(Path(value).expanduser())
    if not value:
        if required:
            raise MissingLocalData(
                f"--scale full needs {key!r}: set {env} to {needs}. Nothing is downloaded."
            )
        return None
    path = Path(value).expanduser()
    if must_exist and not path.exists():
        raise MissingLocalData(f"{env}={value} does not exist (full scale reads local files only)")
    return path
