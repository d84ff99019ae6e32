"""Where ``--scale full`` finds the paper's datasets and models: local paths only, never a download.

Each package names its inputs by a config key with an environment variable as the fallback
(``cfg["data_root"]`` or ``$LDR_DATA_ROOT``, ``cfg["model"]`` or ``$PACS_MODEL``). A missing or wrong
path stops the run with one line that names the variable and what belongs there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xentlab.repro.spec import ReproError


class MissingLocalData(ReproError, FileNotFoundError):
    """A full-scale input is not set or not on disk (the CLI prints it on one line)."""


def local_path(
    cfg: Mapping[str, Any], key: str, env: str, *, needs: str, required: bool = True, must_exist: bool = True
) -> Path | None:
    """``cfg[key]`` if set, else ``$env``, as a Path (``~`` expanded).

    ``needs`` says what the path must hold, for the error. Unset: MissingLocalData when ``required``,
    else None. Set but absent: MissingLocalData when ``must_exist`` (a loader that reports the
    expected file layout itself can pass ``must_exist=False``).
    """
    value = cfg.get(key) or os.environ.get(env)
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
