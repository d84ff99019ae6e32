"""Seeding: one call makes Python, NumPy and torch draw the same numbers every run."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed ``random``, NumPy's legacy global RNG and torch (CPU and all CUDA devices).

    With ``deterministic``, torch is asked for deterministic kernels (``warn_only`` so that an op
    without a deterministic implementation warns instead of failing) and cuBLAS for a fixed
    workspace, so that two runs with one seed give identical metrics.
    """
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def rng_state() -> dict:
    """Every RNG state seed_everything touches, for checkpoints."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
