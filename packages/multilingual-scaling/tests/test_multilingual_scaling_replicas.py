"""The replicated independence protocol: split-half noise floor, the exact within-replica permutation test,
the metrics built on replica means, and the memoised reuse of identical runs."""

from __future__ import annotations

import numpy as np
import pytest
from multilingual_scaling.experiment import (
    CONTROL_MIXES,
    INDEP_FIXED,
    MOVE,
    REPLICA_STRIDE,
    independence_metrics,
    independence_study,
    memoised,
    paired_permutation_test,
    split_half_spread,
)


def test_split_half_hand_value():
    # halves (1, 3) and (2, 6): means 2 and 4, overall mean 3 -> |2 - 4| / 3
    assert split_half_spread([1.0, 3.0, 2.0, 6.0]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="even number"):
        split_half_spread([1.0, 2.0, 3.0])


def test_permutation_identical_rows_hand_value():
    # 2 replicas, 3 mixtures, both rows (10, 11, 12): the observed column means (10, 11, 12) have the largest
    # possible range, 2; a relabelling keeps it only if both rows get the same permutation: 6 of the 6^2 = 36
    # relabellings -> p = 1/6. With sigma = row 2's permutation relative to row 1's, the column sums are
    # a + a[sigma]: ranges 2 (sigma = id, 6 cases), 1.5 (swaps of neighbours, 12), 1 (3-cycles, 12), 0 (swap of
    # the ends, 6); the 95th percentile of the 36 sorted values (position 33.25) is in the top 6: 2/11.
    x = np.array([[10.0, 11.0, 12.0], [10.0, 11.0, 12.0]])
    p, crit = paired_permutation_test(x)
    assert p == pytest.approx(1 / 6)
    assert crit == pytest.approx(2 / 11)


def test_permutation_no_mixture_effect_within_rows():
    # every row constant (only the replica moves the loss): every relabelling gives the observed spread 0
    p, crit = paired_permutation_test(np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [1.5, 1.5, 1.5]]))
    assert p == 1.0 and crit == 0.0


def test_permutation_large_effect_reaches_the_exact_minimum():
    # 4 replicas with a clear mixture effect in the same direction: only the 6 global relabellings reach the
    # observed range -> p = 6 / 6^4 = 1/216
    rng = np.random.default_rng(0)
    x = 1.5 + rng.normal(0, 0.01, (4, 1)) + np.array([0.0, 0.2, 0.4]) + rng.normal(0, 1e-3, (4, 3))
    p, _ = paired_permutation_test(x)
    assert p == pytest.approx(1 / 216)


def test_permutation_sampled_path_agrees_with_exact():
    x = np.random.default_rng(1).normal(1.6, 0.05, (4, 3))
    exact, crit = paired_permutation_test(x)
    sampled, crit_s = paired_permutation_test(x, max_exact=10, n_sample=20_000, seed=3)
    assert abs(sampled - exact) < 0.02 and abs(crit_s - crit) < 0.01 * crit + 1e-3
    with pytest.raises(ValueError, match="replicas, mixtures"):
        paired_permutation_test(np.ones(3))


def test_independence_metrics_use_replica_means():
    # A's loss per replica; fixed-p_A means 1.6, 1.7, 1.8 -> spread 0.2 / 1.7; move (2.2 - 1.1) / 1.1 = 1
    ind = {"M3": np.array([1.5, 1.7, 1.6, 1.6]), "I1": np.array([1.7, 1.7, 1.6, 1.8]),
           "I2": np.array([1.8, 1.9, 1.7, 1.8]), "M1": np.full(4, 2.2), "M2": np.full(4, 1.1)}  # fmt: skip
    ctl = {"X1": np.array([1.0, 1.2, 1.1, 1.1]), "X2": np.array([1.2, 1.2, 1.2, 1.2])}
    out: dict = {}
    independence_metrics(ind, ctl, out)
    assert out["indep_spread_A"] == pytest.approx(0.2 / 1.7)
    assert out["indep_move_A"] == pytest.approx(1.0)
    # split halves: M3 (1.6 vs 1.6) 0, I1 (1.7 vs 1.7) 0, I2 (1.85 vs 1.75) 0.1 / 1.8
    assert out["indep_noise_A"] == pytest.approx((0.1 / 1.8) / 3)
    assert out["control_spread_A"] == pytest.approx(0.1 / 1.15)
    assert 0 < out["indep_perm_p_A"] <= 1


def test_independence_study_replica_seeds_and_reuse():
    calls = []

    def train(world, p, tc, s):
        calls.append((world, tuple(p), s))
        # A's loss depends on p_A and the replica only: the split is irrelevant (H0 exactly)
        return {"losses": [2.0 - p[0] + 0.01 * (s // REPLICA_STRIDE)] + [1.0] * (len(p) - 1), "n_nonemb": 1}

    out: dict = {}
    cached = memoised(train)
    cached("main", (0.3, 0.6, 0.1), "tc", 7)  # the gamma design's run of M3, replica 0
    independence_study(cached, ["A", "B", "C"], ["A", "B", "Aprime", "C_unused"], "tc", 4, 7, out)
    n_mix = len(INDEP_FIXED) + len(MOVE) + len(CONTROL_MIXES)
    assert len(calls) == n_mix * 4  # M3 replica 0 came from the cache
    assert {s for *_, s in calls} == {7, 1007, 2007, 3007}
    assert out["indep_spread_A"] == pytest.approx(0.0, abs=1e-12) and out["indep_perm_p_A"] == 1.0
    assert out["ind_M3_L_A"] == pytest.approx(1.7 + 0.015) and len(out["indep_runs"]["ctl_X2"]) == 4
    with pytest.raises(ValueError, match="even number"):
        independence_study(cached, ["A", "B", "C"], [], "tc", 3, 7, {})


def test_memoised_key_includes_seed_and_ratios():
    n = []
    f = memoised(lambda w, p, tc, s: n.append(1) or {"x": len(n)})
    assert f("main", [0.3, 0.7], "tc", 0) is f("main", (0.3, 0.7), "tc", 0)
    f("main", (0.3, 0.7), "tc", 1)
    f("main", (0.4, 0.6), "tc", 0)
    assert len(n) == 3
