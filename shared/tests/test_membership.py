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


def test_per_sample_loss_clips_a_zero_probability_at_eps():
    # p_y = 0: -log(eps) = 12 ln 10 at the default eps = 1e-12 (finite, so AUCs and means stay defined)
    p = np.array([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(per_sample_loss(p, [0, 1]), [12 * math.log(10)] * 2, rtol=1e-12)


def test_reversed_scores_give_no_advantage():
    # "member iff score >= t" cannot exploit scores that run the wrong way: its best TPR - FPR is 0
    # (the trivial thresholds), balanced accuracy 1/2, even though the AUC is 0
    acc, adv = best_threshold_accuracy([0.0], [3.0, 2.0, 1.0])
    assert acc == 0.5 and adv == 0.0
    assert score_threshold_mia([0.0], [3.0, 2.0, 1.0]).auc == 0.0


def test_tpr_at_fpr_keeps_collinear_roc_points():
    # 50 non-members, 5 members; three member/non-member pairs tied at 0.9, 0.8, 0.7 put ROC points
    # (0.02, 0.2), (0.04, 0.4), (0.06, 0.6) on one line through (0, 0). Under FPR < 0.05 the best
    # point is (0.04, 0.4); sklearn's default drop_intermediate=True would drop it (collinear) -> 0.
    members = [0.9, 0.8, 0.7, 0.5, 0.4]
    nonmembers = [0.9, 0.8, 0.7] + [0.1] * 47
    assert tpr_at_fpr(members, nonmembers) == pytest.approx(0.4)


def _logistic_reference(x, y, c=1.0):
    """argmin 0.5 |w|^2 + C sum log(1 + exp(-s_i (w . z_i + b))) on standardised z (ddof 0), s = +-1, b not
    penalised (scikit-learn's lbfgs objective), solved in float64 with scipy; returns P(member | x)."""
    from scipy.optimize import minimize

    mu, sd = x.mean(0), x.std(0)
    z, s = (x - mu) / sd, 2 * y - 1

    def f(theta):
        m = s * (z @ theta[:-1] + theta[-1])
        return 0.5 * theta[:-1] @ theta[:-1] + c * np.logaddexp(0, -m).sum()

    theta = minimize(f, np.zeros(x.shape[1] + 1), method="BFGS", options={"gtol": 1e-10}).x
    return lambda q: 1 / (1 + np.exp(-(((q - mu) / sd) @ theta[:-1] + theta[-1])))


def test_logistic_attacker_is_standardised_l2_logistic_regression_with_c_1():
    rng = np.random.default_rng(3)
    members, others = rng.normal(0.5, 1.0, (30, 2)), rng.normal(-0.5, 1.0, (30, 2))
    att = fit_attack(members, others, kind="logistic")
    ref = _logistic_reference(np.r_[members, others], np.r_[np.ones(30), np.zeros(30)])
    q = rng.normal(size=(10, 2))
    # atol: scikit-learn stops lbfgs at tol=1e-4 (~2e-4 in probability here); C = 0.5 moves them ~1e-2
    np.testing.assert_allclose(att.predict_proba(q)[:, 1], ref(q), rtol=0, atol=2e-3)


def test_default_attacker_is_a_converged_gbdt():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(4)
    members, others = rng.normal(2, 0.5, (100, 2)), rng.normal(-2, 0.5, (100, 2))
    att = fit_attack(members, others)
    assert isinstance(att, HistGradientBoostingClassifier)
    # 100 boosting rounds on separable data: confident on the training members (a few rounds would
    # stay near the prior 1/2)
    assert att.predict_proba(members)[:, 1].min() > 0.95


def test_attack_success_by_hand():
    class Sign:  # calls a sample a member when its first feature is positive
        def predict(self, x):
            return (x[:, 0] > 0).astype(int)

    targets, nonmembers = np.array([[1.0], [2.0], [-1.0]]), np.array([[-1.0], [1.0]])
    assert attack_success(Sign(), targets) == pytest.approx(2 / 3)
    # accuracy on the union: 2 targets called members + 1 non-member called non-member, of 5
    assert attack_success(Sign(), targets, nonmembers) == pytest.approx(3 / 5)


def test_logistic_attack_accuracy_uses_the_half_threshold():
    # weak signal (means +-0.5, sd 1): the Bayes accuracy is Phi(0.5 * sqrt(3)) ~ 0.81 on three features;
    # the out-of-fold probabilities rarely pass 0.9, so a stricter threshold would sit near chance
    rng = np.random.default_rng(5)
    r = logistic_mia(rng.normal(0.5, 1.0, (200, 3)), rng.normal(-0.5, 1.0, (200, 3)), seed=0)
    assert r.accuracy > 0.7 and r.accuracy <= 0.5 + r.advantage / 2 + 1e-12


def test_logistic_attack_subsamples_the_larger_group_at_random():
    # 200 members whose first 50 look like the non-members: a random 50 of them is mostly informative
    # (AUC ~ 0.85); the first 50 would be indistinguishable from the non-members (AUC ~ 0.5)
    rng = np.random.default_rng(6)
    members = np.r_[rng.normal(0.0, 1.0, (50, 2)), rng.normal(3.0, 1.0, (150, 2))]
    assert logistic_mia(members, rng.normal(0.0, 1.0, (50, 2)), seed=0).auc > 0.7


def test_logistic_attack_needs_a_sample_per_fold():
    with pytest.raises(ValueError, match="at least 5 members"):
        logistic_mia(np.zeros((4, 2)), np.ones((10, 2)))
