"""Fidelity audit: the package's formulas against the third-party reproduction (zkshan2002/ScalingLaw,
``main.py``: ``_mtl_prepare``, ``_huber``, ``_mtl_fit``, ``_evaluate``), written out here in float64 from
their definitions (no code copied). Each test pins one item of the README's audit table."""

from __future__ import annotations

import itertools

import numpy as np
from lr_annealing_scaling.areas import LAMBDA, annealing_areas
from lr_annealing_scaling.law import BOUNDS, GRID, HUBER_DELTA, law_objective, mape

from xentlab.testing import assert_close


def _reference_areas(lr, lam):
    """Third-party definition: S1 = cumsum(eta); m_1 = eta_1, m_i = lam m_{i-1} + (eta_{i-1} - eta_i)."""
    m = [lr[0]]
    for i in range(1, len(lr)):
        m.append(lam * m[-1] + (lr[i - 1] - lr[i]))
    return np.cumsum(lr), np.cumsum(m)


def test_areas_equal_reference_up_to_the_documented_first_momentum():
    # Deviation 4: ours has m_1 = 0 instead of eta_1. The recursion is linear, so the two momenta differ by
    # eta_1 lam^(i-1) at step i, and S2 by eta_1 * sum_{j<i} lam^j = eta_1 (1 - lam^i) / (1 - lam).
    rng = np.random.default_rng(0)
    lr = np.abs(rng.normal(1e-2, 3e-3, 300))
    for lam in (0.9, LAMBDA):
        s1_ref, s2_ref = _reference_areas(lr, lam)
        s1, s2 = annealing_areas(lr, lam=lam, warmup=0)
        i = np.arange(1, lr.size + 1)
        offset = lr[0] * (1 - lam**i) / (1 - lam)
        assert_close(s1, s1_ref, rtol=1e-12, atol=0.0, name="S1")
        assert_close(s2, s2_ref - offset, rtol=0.0, atol=1e-12, name="S2 + m_1 offset")
    assert LAMBDA == 0.999  # MTL_LAMBDA


def test_objective_is_the_reference_huber_on_log_sum():
    # _huber: 0.5 x^2 for |x| <= delta, delta |x| - 0.5 delta^2 beyond (delta = 1e-3); summed over points of
    # log(pred) - log(loss), pred = L0 + A S1^-alpha - C S2; 1e10 where any pred <= 0.
    assert HUBER_DELTA == 1e-3
    s1 = np.array([1.0, 2.0, 5.0, 9.0])
    s2 = np.array([0.0, 0.5, 1.0, 3.0])
    loss = np.array([3.1, 2.7, 2.4, 2.0])
    theta = np.array([1.5, 1.7, 0.4, 0.05])
    pred = theta[0] + theta[1] * s1 ** (-theta[2]) - theta[3] * s2
    x = np.log(pred) - np.log(loss)
    ref = np.where(np.abs(x) <= 1e-3, 0.5 * x**2, 1e-3 * np.abs(x) - 0.5 * 1e-3**2).sum()
    assert abs(law_objective(theta, s1, s2, np.log(loss)) - ref) <= 1e-15
    bad = np.array([0.1, 0.1, 0.4, 1.0])  # predicts < 0 at the last point
    assert law_objective(bad, s1, s2, np.log(loss)) == 1e10


def test_bounds_and_start_grid_are_the_reference_ones():
    assert BOUNDS == {"l0": (0.0, 10.0), "a": (0.0, 20.0), "alpha": (0.0, 10.0), "c": (0.0, 20.0)}
    assert GRID["l0"] == (1.0, 2.0, 4.0) and GRID["a"] == (1.0, 2.0, 4.0) and GRID["c"] == (0.5, 1.0)
    assert GRID["alpha"] == (0.2, 0.4, 0.6, 0.8, 1.0, 1.2)
    assert len(list(itertools.product(*GRID.values()))) == 108


def test_mape_is_the_reference_prede():
    # _evaluate's PredE = mean |gt - pred| / gt
    obs = np.array([2.0, 4.0, 5.0])
    pred = np.array([2.2, 3.0, 5.0])
    assert abs(mape(pred, obs) - (0.1 + 0.25 + 0.0) / 3) <= 1e-15


def test_eval_step_k_pairs_with_the_areas_of_the_first_k_updates():
    # Second audit: the law pairs the loss at eval step k (1-based) with S1[k - 1] = sum of lr[0..k-1], so the
    # loss at step k must have seen exactly the k updates made with lr[0], ..., lr[k-1]. With lr = 0 from the
    # 4th update on (AdamW, no weight decay: a zero lr is no update), the losses at steps 3, 4, 5, 6 must be
    # equal and differ from step 2's; an off-by-one in train_schedule would move the plateau by one step.
    from lr_annealing_scaling.train import TrainConfig, train_schedule

    from xentlab.data.markov_source import MarkovSourceConfig

    cfg = TrainConfig(hidden=16, layers=1, heads=2, steps=6, warmup=0, eval_every=1, val_seqs=8)
    src = MarkovSourceConfig(vocab_size=8, order=1, support=2, seed=0)
    lr = np.array([1e-2, 1e-2, 1e-2, 0.0, 0.0, 0.0])
    run = train_schedule(cfg, src, lr, seed=0)
    assert run["steps"] == [1, 2, 3, 4, 5, 6]
    loss = run["loss"]
    assert loss[3] == loss[2] and loss[4] == loss[2] and loss[5] == loss[2]
    assert loss[2] != loss[1]
    s1, _ = annealing_areas(lr, warmup=0)
    assert s1[3 - 1] == lr[:3].sum() and s1[6 - 1] == s1[3 - 1]  # S1 stops growing where training stops
