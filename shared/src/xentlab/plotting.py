"""Figures for reproduce.py: a headless pyplot and one way to save a figure.

Every package draws its own plots, but all of them need the same two things: matplotlib's
non-interactive backend (CI and the GPU machine have no display) and a save that cannot leave a
half-written PNG behind when a run is interrupted. ``save_figure`` renders into memory and then
writes the file atomically with :func:`xentlab.data.cache.atomic_write_bytes`, like every other
artefact of a run.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from xentlab.data.cache import atomic_write_bytes


def pyplot():
    """``matplotlib.pyplot`` on the headless Agg backend (imported lazily: matplotlib is slow to load)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(
    fig: Any, path: str | os.PathLike, *, dpi: int = 120, tight: bool = True, **savefig_kwargs: Any
) -> Path:
    """Lay out, render and atomically write ``fig`` to ``path``, then close it; returns the path.

    ``tight`` applies ``fig.tight_layout()`` first (what almost every figure wants); extra keyword
    arguments go to ``Figure.savefig`` (e.g. ``bbox_inches="tight"``). The format follows the file
    suffix, as with ``savefig``.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if not fmt:
        raise ValueError(f"save_figure: {path} has no suffix to choose the image format from (e.g. .png)")
    try:
        if tight:
            fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, **savefig_kwargs)
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
