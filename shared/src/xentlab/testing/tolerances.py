"""Default tolerances per dtype, for comparing a result against a higher-precision reference.

The numbers follow torch.testing's defaults for each dtype; they are a floor, and a test that knows
its error model (e.g. the official CCE criterion: no worse than plain PyTorch at that dtype plus a
margin) should pass its own.
"""

from __future__ import annotations

import torch

TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    # dtype: (rtol, atol)
    torch.float64: (1e-7, 1e-7),
    torch.float32: (1.3e-6, 1e-5),
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
}


def default_tolerance(dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for ``dtype``; integer and bool dtypes compare exactly."""
    if not (dtype.is_floating_point or dtype.is_complex):
        return (0.0, 0.0)
    return TOLERANCES.get(dtype, (1.3e-6, 1e-5))
