"""xentlab.metrics.membership: threshold attacks by hand, the cross-validated logistic attack, fit/apply."""

import math

import numpy as np
import pytest

from xentlab.metrics.membership import (
    attack_features,
    attack_success,
    best_threshold_accuracy,
    entropy_threshold_mia,
    fit_attack,
    logistic_mia,
    loss_threshold_mia,
    per_sample_entropy,
    per_sample_loss,
    score_threshold_mia,
    tpr_at_fpr,
)


def test_loss_threshold_by_hand():
    # members' losses all below non-members': perfect separation
    r = loss_threshold_mia([0.1, 0.2, 0.3], [0.5, 0.9])
    assert r.auc == 1.0 and r.accuracy == 1.0 and r.advantage == 1.0
    # identical distributions: AUC 1/2
    r = loss_threshold_mia([1.0, 2.0], [1.0, 2.0])
    assert math.isclose(r.auc, 0.5)
    # one swap among 2x2: pairs (m, n) with m < n: (.1,.4), (.5,... ) -> AUC = 3/4
    r = loss_threshold_mia([0.1, 0.5], [0.4, 0.9])
    assert math.isclose(r.auc, 0.75)


def test_score_threshold_is_the_loss_attack_on_minus_the_loss():
    r = score_threshold_mia([-0.1, -0.5], [-0.4, -0.9])
    assert r == loss_threshold_mia([0.1, 0.5], [0.4, 0.9])


def test_tpr_at_fpr_uses_a_strict_bound():
    # 4 members (0.99, 0.97, 0.5, 0.3), 20 non-members (0.00..0.18 and one at 0.95). A threshold at
    # 0.97 catches 2 members with no false positive: TPR 1/2 at FPR 0. Any lower threshold lets the
    # non-member at 0.95 in: FPR 1/20 = 0.05, which "FPR < 0.05" excludes; with the bound just above
    # 0.05 every member is caught (threshold 0.3 passes no other non-member): TPR 1.
    members = [0.99, 0.97, 0.5, 0.3]
    nonmembers = [i / 100 for i in range(19)] + [0.95]
    assert tpr_at_fpr(members, nonmembers) == 0.5
    assert tpr_at_fpr(members, nonmembers, fpr_max=0.051) == 1.0
    assert tpr_at_fpr([2.0], [1.0]) == 1.0  # perfect separation: full TPR at FPR 0
    with pytest.raises(ValueError, match="fpr_max"):
        tpr_at_fpr(members, nonmembers, fpr_max=0.0)
    with pytest.raises(ValueError, match="at least one member"):
        tpr_at_fpr([], nonmembers)


def test_best_threshold_accuracy_is_balanced():
    acc, adv = best_threshold_accuracy([3.0, 2.0, 1.0], [0.0])
    assert acc == 1.0 and adv == 1.0


def test_per_sample_loss_entropy():
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    assert np.allclose(per_sample_loss(p, [0, 0]), [math.log(2), 0.0])
    assert np.allclose(per_sample_entropy(p), [math.log(2), 0.0], atol=1e-9)
    r = entropy_threshold_mia(np.array([[0.99, 0.01]] * 3), np.array([[0.6, 0.4]] * 3))
    assert r.auc == 1.0


def test_attack_features_sorted_and_optional_loss():
    p = np.array([[0.1, 0.7, 0.2]])
    assert np.allclose(attack_features(p), [[0.7, 0.2, 0.1]])
    assert np.allclose(attack_features(p, [2]), [[0.7, 0.2, 0.1, -math.log(0.2)]])


def test_logistic_attack_separates_and_is_chance_on_iid():
    rng = np.random.default_rng(0)
    members = rng.normal(1.0, 1.0, (200, 3))
    others = rng.normal(-1.0, 1.0, (200, 3))
    r = logistic_mia(members, others, seed=0)
    assert r.auc > 0.9 and r.accuracy > 0.8
    iid = logistic_mia(rng.normal(size=(200, 3)), rng.normal(size=(200, 3)), seed=0)
    assert abs(iid.auc - 0.5) < 0.1
    assert logistic_mia(members, others, seed=0) == r  # seeded


def test_fit_and_apply_attack():
    rng = np.random.default_rng(1)
    members, others = rng.normal(2, 0.5, (100, 2)), rng.normal(-2, 0.5, (100, 2))
    for kind in ("logistic", "gbdt"):
        att = fit_attack(members, others, kind=kind, seed=0)
        assert attack_success(att, rng.normal(2, 0.5, (50, 2))) > 0.9
        assert attack_success(att, rng.normal(-2, 0.5, (50, 2))) < 0.1
        assert attack_success(att, rng.normal(2, 0.5, (50, 2)), rng.normal(-2, 0.5, (50, 2))) > 0.9


def test_errors():
    with pytest.raises(ValueError, match="member"):
        loss_threshold_mia([], [1.0])
    with pytest.raises(ValueError, match="widths"):
        logistic_mia(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="attacker"):
        fit_attack(np.zeros((3, 2)), np.ones((3, 2)), kind="svm")
