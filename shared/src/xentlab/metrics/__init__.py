"""Metrics shared by the packages, and seed-level statistics."""

from xentlab.metrics.bootstrap import bootstrap_ci, summarize
from xentlab.metrics.classification import accuracy, ece

__all__ = ["accuracy", "bootstrap_ci", "ece", "summarize"]
