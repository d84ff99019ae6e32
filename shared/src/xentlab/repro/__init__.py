"""The reproduction contract: declare a paper's experiments and claims, run them over seeds, report.

See ``ci/API.md`` at the repository root for a worked example.
"""

from xentlab.repro.cli import run_cli
from xentlab.repro.context import RunContext
from xentlab.repro.runner import Results, aggregate, judge, run_experiments
from xentlab.repro.spec import SCALES, Claim, Derived, Experiment, Paper, ReproError, difference
from xentlab.repro.verdicts import FAILS, HOLDS, INCONCLUSIVE, evaluate_claim

__all__ = [
    "FAILS",
    "HOLDS",
    "INCONCLUSIVE",
    "SCALES",
    "Claim",
    "Derived",
    "Experiment",
    "Paper",
    "ReproError",
    "Results",
    "RunContext",
    "aggregate",
    "difference",
    "evaluate_claim",
    "judge",
    "run_cli",
    "run_experiments",
]
