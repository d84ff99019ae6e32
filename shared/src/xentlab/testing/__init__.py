"""Test helpers: readable closeness checks, gradient checks, smoke runs of reproduce.py, loading a
reproduce.py as a module, dataset fixtures (``xentlab.testing.fixtures``)."""

from xentlab.testing.assert_close import assert_close
from xentlab.testing.gradients import check_gradients
from xentlab.testing.reproduce_module import load_reproduce
from xentlab.testing.smoke import run_smoke
from xentlab.testing.tolerances import TOLERANCES, default_tolerance

__all__ = [
    "TOLERANCES",
    "assert_close",
    "check_gradients",
    "default_tolerance",
    "load_reproduce",
    "run_smoke",
]
