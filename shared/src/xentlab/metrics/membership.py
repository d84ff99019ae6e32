"""Membership-inference attack (MIA) metrics for unlearning and privacy experiments.

Three attacks on a trained model's outputs, each scored with scikit-learn's ROC AUC (0.5 = the
attacker cannot tell members from non-members) and the best balanced accuracy over thresholds:

* ``score_threshold_mia``: any score where higher means member (e.g. a pretraining-data detection
  score); the two below are this attack on a particular score.
* ``loss_threshold_mia``: members have lower loss (Yeom et al. 2018); score = -loss.
* ``entropy_threshold_mia``: members have lower predictive entropy (Salem et al. 2019); score = -H(p).
* ``logistic_mia``: a shadow-free learned attack: a logistic regression on each sample's sorted
  probability vector (plus its loss when labels are given), trained and scored by stratified k-fold
  cross-validation on the target model's own members and non-members.

``tpr_at_fpr`` gives the TPR at a low false-positive rate (e.g. TPR@5%FPR), the detection literature's
second number beside the AUC.

``fit_attack`` / ``attack_success`` reproduce the protocol of the unlearning literature (e.g. the LAF
code): an attacker is trained to separate the model's outputs on known members (a sample of the
retained training data) from non-members (test data), then applied to the forgotten set; the share
of forgotten samples it calls "member" (or its accuracy on forgotten + held-out test samples) is
reported. Features are the sorted softmax vector, so the attack is label-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "MIAResult",
    "attack_features",
    "attack_success",
    "best_threshold_accuracy",
    "entropy_threshold_mia",
    "fit_attack",
    "logistic_mia",
    "loss_threshold_mia",
    "per_sample_entropy",
    "per_sample_loss",
    "score_threshold_mia",
    "tpr_at_fpr",
]


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu()
        return a.double().numpy() if a.is_floating_point() else a.numpy()
    return np.asarray(a)


@dataclass(frozen=True)
class MIAResult:
    auc: float
    """ROC AUC of the attack score for member (1) vs non-member (0)"""
    accuracy: float
    """best balanced accuracy over thresholds (threshold attacks) or cross-validated accuracy (learned)"""
    advantage: float
    """membership advantage: max over thresholds of TPR - FPR (= 2 * balanced accuracy - 1)"""

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}auc": self.auc, f"{prefix}acc": self.accuracy, f"{prefix}adv": self.advantage}


def per_sample_loss(probs, target, eps: float = 1e-12) -> np.ndarray:
    """Cross-entropy -log p_y per sample."""
    p, t = _np(probs).astype(np.float64), _np(target).astype(np.int64)
    if p.ndim != 2 or t.shape != (len(p),):
        raise ValueError(f"need probs (N, C) and target (N,), got {p.shape} and {t.shape}")
    return -np.log(np.clip(p[np.arange(len(t)), t], eps, None))


def per_sample_entropy(probs, eps: float = 1e-12) -> np.ndarray:
    """Shannon entropy of each probability row (nats)."""
    p = _np(probs).astype(np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (N, C), got {p.shape}")
    return -np.sum(p * np.log(np.clip(p, eps, None)), axis=1)


def best_threshold_accuracy(member_scores, nonmember_scores) -> tuple[float, float]:
    """(best balanced accuracy, best TPR - FPR) of the rule 'member iff score >= t' over all t."""
    from sklearn.metrics import roc_curve

    s_in, s_out = _np(member_scores).ravel(), _np(nonmember_scores).ravel()
    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    fpr, tpr, _ = roc_curve(y, np.r_[s_in, s_out])
    adv = float(np.max(tpr - fpr))
    return 0.5 + adv / 2, adv


def score_threshold_mia(member_scores, nonmember_scores) -> MIAResult:
    """Threshold attack on a score where higher means member: AUC, best balanced accuracy, advantage."""
    from sklearn.metrics import roc_auc_score

    s_in, s_out = _np(member_scores).ravel(), _np(nonmember_scores).ravel()
    if len(s_in) == 0 or len(s_out) == 0:
        raise ValueError("need at least one member and one non-member")
    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    auc = float(roc_auc_score(y, np.r_[s_in, s_out]))
    acc, adv = best_threshold_accuracy(s_in, s_out)
    return MIAResult(auc, acc, adv)


def tpr_at_fpr(member_scores, nonmember_scores, fpr_max: float = 0.05) -> float:
    """The largest TPR of the rule "member iff score >= t" among thresholds with FPR < ``fpr_max``.

    The FPR bound is strict, as in the detection code this serves (DC-PDD's ``evaluate``:
    ``tpr[np.where(fpr < 0.05)[0][-1]]``): with 20 non-members, one false positive is FPR 0.05 and is
    not allowed at ``fpr_max=0.05``. The full ROC is used (``drop_intermediate=False``); the threshold
    above every score gives (0, 0), so the answer always exists. DC-PDD's code reads sklearn's default
    ``drop_intermediate=True`` ROC instead; the two agree except when a member/non-member tie makes a
    diagonal ROC segment cross ``fpr_max``: the default drops the point inside it, so the official rule can
    return a lower TPR there (packages/dc-pdd tests the case).
    """
    from sklearn.metrics import roc_curve

    if not 0 < fpr_max <= 1:
        raise ValueError(f"fpr_max must be in (0, 1], got {fpr_max}")
    s_in, s_out = (
        _np(member_scores).ravel().astype(np.float64),
        _np(nonmember_scores).ravel().astype(np.float64),
    )
    if len(s_in) == 0 or len(s_out) == 0:
        raise ValueError("need at least one member and one non-member")
    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    fpr, tpr, _ = roc_curve(y, np.r_[s_in, s_out], drop_intermediate=False)
    return float(tpr[fpr < fpr_max].max())


def loss_threshold_mia(member_losses, nonmember_losses) -> MIAResult:
    """Loss-threshold attack: a sample is called a member when its loss is low (score = -loss)."""
    return score_threshold_mia(-_np(member_losses), -_np(nonmember_losses))


def entropy_threshold_mia(member_probs, nonmember_probs) -> MIAResult:
    """Entropy-threshold attack: a sample is called a member when its prediction is confident."""
    return score_threshold_mia(-per_sample_entropy(member_probs), -per_sample_entropy(nonmember_probs))


def attack_features(probs, target=None) -> np.ndarray:
    """Label-free attack features: the probability vector sorted in decreasing order; with ``target``,
    the per-sample loss is appended as a last column."""
    p = _np(probs).astype(np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (N, C), got {p.shape}")
    feats = -np.sort(-p, axis=1)
    if target is not None:
        feats = np.c_[feats, per_sample_loss(p, target)]
    return feats


def _make_attacker(kind: str, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=1.0))
    if kind == "gbdt":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    raise ValueError(f"attacker must be 'logistic' or 'gbdt', got {kind!r}")


def logistic_mia(member_feats, nonmember_feats, *, folds: int = 5, seed: int = 0) -> MIAResult:
    """Cross-validated logistic-regression attack on given features (see ``attack_features``).

    Members and non-members are balanced by subsampling the larger group (seeded), so accuracy 0.5
    is chance. AUC and accuracy are computed on the out-of-fold predictions.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    a, b = _np(member_feats).astype(np.float64), _np(nonmember_feats).astype(np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature matrices must be 2-d with equal widths, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    m = min(len(a), len(b))
    if m < folds:
        raise ValueError(f"need at least {folds} members and non-members, got {len(a)} and {len(b)}")
    a, b = a[rng.permutation(len(a))[:m]], b[rng.permutation(len(b))[:m]]
    x, y = np.r_[a, b], np.r_[np.ones(m), np.zeros(m)]
    score = np.empty(len(y))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        clf = _make_attacker("logistic", seed).fit(x[tr], y[tr])
        score[te] = clf.predict_proba(x[te])[:, 1]
    auc = float(roc_auc_score(y, score))
    acc = float(np.mean((score >= 0.5) == y))
    _, adv = best_threshold_accuracy(score[y == 1], score[y == 0])
    return MIAResult(auc, acc, adv)


def fit_attack(member_feats, nonmember_feats, *, kind: str = "gbdt", seed: int = 0):
    """Train an attacker (``'gbdt'``: gradient-boosted trees, the stand-in for the XGBoost attacker of
    the unlearning literature; ``'logistic'``) on member (label 1) vs non-member (label 0) features."""
    a, b = _np(member_feats).astype(np.float64), _np(nonmember_feats).astype(np.float64)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("need at least one member and one non-member to fit an attacker")
    x, y = np.r_[a, b], np.r_[np.ones(len(a)), np.zeros(len(b))]
    return _make_attacker(kind, seed).fit(x, y)


def attack_success(attacker, target_feats, nonmember_feats=None) -> float:
    """Share of ``target_feats`` the attacker calls members; with ``nonmember_feats`` (labelled 0),
    the attacker's accuracy on the union (the LAF code's 'MIA accuracy')."""
    t = _np(target_feats).astype(np.float64)
    pred_t = attacker.predict(t)
    if nonmember_feats is None:
        return float(np.mean(pred_t == 1))
    n = _np(nonmember_feats).astype(np.float64)
    pred_n = attacker.predict(n)
    return float((np.sum(pred_t == 1) + np.sum(pred_n == 0)) / (len(t) + len(n)))
