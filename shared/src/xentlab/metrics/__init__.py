"""Metrics shared by the packages, and seed-level statistics."""

from xentlab.metrics.bootstrap import bootstrap_ci, summarize
from xentlab.metrics.classification import accuracy, ece
from xentlab.metrics.pass_at_k import mean_pass_at_k, pass_at_k, pass_at_n_exact

__all__ = ["accuracy", "bootstrap_ci", "ece", "mean_pass_at_k", "pass_at_k", "pass_at_n_exact", "summarize"]
