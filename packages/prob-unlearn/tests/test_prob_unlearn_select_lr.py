"""The lr re-selection rule of scripts/select_lr.py (README, "lr re-selection"): the largest candidate at
which every base method keeps retain greedy ROUGE-L >= 0.1 and lowers forget greedy ROUGE-L by >= 0.1."""

from pathlib import Path

import pytest

from xentlab.testing import load_reproduce

# a script, not reproduce.py, but loaded the same way (the project's loader, not an importlib block of ours)
select_lr = load_reproduce(Path(__file__).parents[1] / "scripts" / "select_lr.py")


def _rows(lr, forget, retain):
    return [
        {"lr": lr, "method": m, "forget_greedy_rouge": f, "retain_greedy_rouge": r}
        for m, f, r in zip(("ga", "gd", "npo"), forget, retain)
    ]


def test_rule_constants_are_the_documented_ones():
    assert select_lr.PROBE_SEED == 99
    assert select_lr.CANDIDATES == (1e-3, 3e-4, 1e-4)
    assert select_lr.MIN_RETAIN_ROUGE == 0.1 and select_lr.MIN_FORGET_DROP == 0.1


def test_largest_passing_candidate_wins_and_collapse_or_no_unlearning_rejects():
    base = 1.0
    rows = (
        _rows(1e-3, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))  # collapse (the first probe's 1e-3)
        + _rows(3e-4, (0.2, 0.3, 0.2), (0.05, 0.6, 0.5))  # GA collapses on retain
        + _rows(1e-4, (0.3, 0.4, 0.3), (0.7, 0.9, 0.8))  # unlearns, keeps retain
    )
    assert select_lr.choose(rows, base, select_lr.CANDIDATES) == 1e-4
    # 3e-4 passes once GA keeps retain >= 0.1: the larger passing lr wins
    rows[3]["retain_greedy_rouge"] = 0.1
    assert select_lr.choose(rows, base, select_lr.CANDIDATES) == 3e-4
    # no unlearning at 1e-4 (NPO's forget ROUGE-L only 0.05 below the base model's): nothing passes
    weak = _rows(1e-4, (0.3, 0.4, 0.95), (0.7, 0.9, 0.8))
    assert select_lr.choose(weak, base, select_lr.CANDIDATES) is None


def test_passes_needs_every_base_method():
    with pytest.raises(ValueError, match="one row per base method"):
        select_lr.passes(_rows(1e-4, (0.3, 0.4), (0.7, 0.9)), 1.0)
