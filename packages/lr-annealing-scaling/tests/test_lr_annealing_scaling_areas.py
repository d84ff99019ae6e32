"""S1 / S2 against hand computations, and the schedules' shapes."""

from __future__ import annotations

import numpy as np
import pytest
from lr_annealing_scaling.areas import annealing_areas
from lr_annealing_scaling.schedules import SCHEDULES, make_schedule

from xentlab.testing import assert_close


def test_areas_tiny_decay_then_flat():
    # lr = [4, 4, 2, 1, 1, 1], lam = 0.5, no warm-up.
    # S1 = cumsum = [4, 8, 10, 11, 12, 13].
    # m_1 = 0 (eta_0 := eta_1); m_2 = 0.5*0 + (4-4) = 0; m_3 = 0 + (4-2) = 2; m_4 = 1 + (2-1) = 2;
    # after the decay stops the memory keeps S2 growing: m_5 = 1 + 0 = 1, m_6 = 0.5.
    # S2 = cumsum(m) = [0, 0, 2, 4, 5, 5.5].
    s1, s2 = annealing_areas([4.0, 4.0, 2.0, 1.0, 1.0, 1.0], lam=0.5)
    assert_close(s1, np.array([4.0, 8.0, 10.0, 11.0, 12.0, 13.0]), name="S1")
    assert_close(s2, np.array([0.0, 0.0, 2.0, 4.0, 5.0, 5.5]), name="S2")


def test_areas_warmup_excluded_from_momentum():
    # lr = [1, 2, 3, 3, 1], warm-up 3 steps (indices 0..2). S1 = [1, 3, 6, 9, 10] counts the warm-up.
    # m stays 0 through the warm-up (the rising lr is not negative annealing): m_4 = 0 + (3-3) = 0,
    # m_5 = 0.9*0 + (3-1) = 2. S2 = [0, 0, 0, 0, 2].
    s1, s2 = annealing_areas([1.0, 2.0, 3.0, 3.0, 1.0], lam=0.9, warmup=3)
    assert_close(s1, np.array([1.0, 3.0, 6.0, 9.0, 10.0]), name="S1")
    assert_close(s2, np.array([0.0, 0.0, 0.0, 0.0, 2.0]), name="S2")


def test_areas_restart_makes_momentum_negative():
    # lr = [2, 1, 2], lam = 0.5: m = [0, 1, 0.5 - 1 = -0.5]; S2 = [0, 1, 0.5]: a re-warm lowers S2.
    _, s2 = annealing_areas([2.0, 1.0, 2.0], lam=0.5)
    assert_close(s2, np.array([0.0, 1.0, 0.5]), name="S2")


def test_areas_per_step_not_subsampled():
    # S2 read at every 10th step differs from S2 of the lr subsampled every 10th step (the third-party
    # pitfall): the per-step recursion is the definition.
    lr = make_schedule("cosine", 200, 1.0, 10)
    _, s2 = annealing_areas(lr, lam=0.999, warmup=10)
    _, s2_sub = annealing_areas(lr[9::10], lam=0.999, warmup=1)
    assert not np.allclose(s2[9::10], s2_sub, rtol=0.05)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"lr": []}, "non-empty"), ({"lr": [1.0, -1.0]}, ">= 0"), ({"lr": [1.0], "lam": 1.0}, "lam"),
     ({"lr": [1.0, 1.0], "warmup": 2}, "warmup")],
)  # fmt: skip
def test_areas_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        annealing_areas(**kwargs)


def test_schedules_shapes():
    steps, peak, w = 100, 1.0, 10
    lrs = {n: make_schedule(n, steps, peak, w) for n in SCHEDULES}
    for n, lr in lrs.items():
        assert lr.shape == (steps,)
        assert_close(lr[:w], np.arange(1, w + 1) / w, name=f"{n} warm-up")  # identical warm-up
        assert lr[w] == pytest.approx(peak)
    assert np.all(lrs["constant"][w:] == peak)
    assert lrs["cosine"][-1] == pytest.approx(0.1) and np.all(np.diff(lrs["cosine"][w:]) <= 0)
    assert np.all(lrs["wsd"][w:80] == peak) and lrs["wsd"][-1] == pytest.approx(0.1)
    assert_close(np.diff(lrs["wsd"][80:]), np.full(19, -0.9 / 20), name="wsd linear decay")
    assert set(np.round(lrs["step2"][w:], 6)) == {1.0, round(np.sqrt(0.1), 6), 0.1}
    r = lrs["restart"]
    assert (
        r[w + 44] == pytest.approx(0.1) and r[w + 45] == pytest.approx(peak) and r[-1] == pytest.approx(0.1)
    )


def test_schedule_errors():
    with pytest.raises(ValueError, match="unknown schedule"):
        make_schedule("linear", 10, 1.0, 1)
    with pytest.raises(ValueError, match="warmup"):
        make_schedule("cosine", 10, 1.0, 10)
