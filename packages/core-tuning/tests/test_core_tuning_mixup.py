"""The 3B features: hard pairs on a hand-built example (both index rules), the mixes, the clamp, detaching."""

import math

import pytest
import torch
from core_tuning.mixup import feature_mixup, hard_pairs
from core_tuning.model import Contrastor

from xentlab.testing import assert_close


def _angles(degs):
    return torch.tensor(
        [[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in degs], dtype=torch.float64
    )


# unit vectors at these angles; classes 0, 0, 0, 1, 1
FEATS = _angles([0, 10, 60, 30, 90])
LABELS = torch.tensor([0, 0, 0, 1, 1])


def test_hard_pairs_paper_rule():
    hp, hn = hard_pairs(FEATS, LABELS)
    # sample 0 (0 deg): same class at 10, 60 -> lowest cosine 60 (index 2); other class at 30, 90 -> 30 (index 3)
    # sample 3 (30 deg): its only positive is 4; closest other-class angles 10 and 60 (both 20/30 deg off) -> 10 deg
    # sample 4 (90 deg): positive 3; closest other class 60 deg (index 2)
    assert hp.tolist() == [2, 2, 0, 4, 3]
    assert hn.tolist() == [3, 3, 3, 1, 2]


def test_singleton_class_uses_itself():
    hp, hn = hard_pairs(FEATS[:4], torch.tensor([0, 0, 0, 1]))
    assert hp[3] == 3
    hp, hn = hard_pairs(FEATS[:2], torch.tensor([0, 0]))  # no negative at all
    assert hn.tolist() == [0, 1]


def test_official_argmin_quirk():
    # non-negative similarities: the masked zeros win the argmin. Row 0 -> index 0 -> replaced by 0 (itself);
    # rows 1 and 2 -> first zero is their own column; rows 3, 4 -> first zero is column 0 -> replaced by themselves.
    hp, hn = hard_pairs(FEATS, LABELS, official_argmin=True)
    assert hp.tolist() == [0, 1, 2, 3, 4]
    assert hn.tolist() == [3, 3, 3, 1, 2]  # the argmax is unaffected when every similarity is >= 0
    # order [class 0, class 1, class 0]: row 2's first masked zero is column 1, a sample of the OTHER class
    hp, _ = hard_pairs(_angles([0, 30, 20]), torch.tensor([0, 1, 0]), official_argmin=True)
    assert hp.tolist() == [0, 1, 1]


def test_feature_mixup_rows():
    torch.manual_seed(0)
    b, c = 5, 2
    h = FEATS.clone().requires_grad_(True)
    m = feature_mixup(h, LABELS, c, alpha=1.0)
    assert m.features.shape == (3 * b, 2) and m.soft_labels.shape == (3 * b, c)
    assert_close(m.soft_labels.sum(1), torch.ones(3 * b, dtype=torch.float64))
    assert (m.lam_negative >= 0.8).all() and (m.lam_negative <= 1).all()
    lam = m.lam_negative[:, None]
    y = torch.nn.functional.one_hot(LABELS, c).double()
    assert_close(m.features[b : 2 * b], (1 - lam) * FEATS + lam * FEATS[m.perm])
    assert_close(m.soft_labels[b : 2 * b], (1 - lam) * y + lam * y[m.perm])
    lp = m.lam_positive[:, None]
    assert_close(m.features[2 * b :], lp * FEATS[[2, 2, 0, 4, 3]] + (1 - lp) * FEATS[[3, 3, 3, 1, 2]])
    assert_close(m.soft_labels[:b], y)


def test_originals_detached_as_official():
    h = FEATS.clone().requires_grad_(True)
    m = feature_mixup(h, LABELS, 2)
    m.features[:5].sum().backward(retain_graph=True)  # the 3B rows need grad; the first B reach no leaf
    assert h.grad.abs().sum() == 0  # the original rows send no gradient back to the backbone
    m.features[5:].sum().backward()
    assert h.grad is not None and h.grad.abs().sum() > 0
    h2 = FEATS.clone().requires_grad_(True)
    feature_mixup(h2, LABELS, 2, detach_originals=False).features[:5].sum().backward()
    assert_close(h2.grad, torch.ones_like(h2))


def test_clamp_holds_for_small_alpha_and_errors():
    torch.manual_seed(1)
    m = feature_mixup(torch.randn(64, 3), torch.randint(0, 4, (64,)), 4, alpha=0.2)
    assert (m.lam_negative >= 0.8).all() and ((m.lam_positive >= 0) & (m.lam_positive <= 1)).all()
    with pytest.raises(ValueError, match="alpha"):
        feature_mixup(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), 2, alpha=0.0)
    with pytest.raises(ValueError, match="labels"):
        feature_mixup(torch.randn(4, 3), torch.zeros(5, dtype=torch.long), 2)


def test_contrastor_is_normalised():
    z = Contrastor(6, 3)(torch.randn(7, 6))
    assert z.shape == (7, 3)
    assert_close(z.norm(dim=1), torch.ones(7))
