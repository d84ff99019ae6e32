"""CPRD / ListMLE / KL / ITC losses: hand derivations, a float64 loop reference, gradcheck, errors."""

import math

import pytest
import torch
from cprd.losses import itc_loss, kl_distill_loss, partial_ranking_loss

from xentlab.testing import assert_close, check_gradients


def _reference(s, t, tau, k, thr, negatives):
    """Loop-by-loop transcription of the CPRD formula (float64)."""
    total = 0.0
    for i in range(s.shape[0]):
        cand = [j for j in range(s.shape[1]) if negatives[i, j]]
        cand = sorted(cand, key=lambda j: -float(s[i, j]))[: (len(cand) if k is None else k)]  # student top-K
        cand = sorted(cand, key=lambda j: -float(t[i, j]))  # teacher order c_1..c_K
        for pos, j in enumerate(cand):
            if thr is not None and float(t[i, j]) < thr:
                continue
            tail = [float(s[i, c]) / tau for c in cand[pos:]]
            total += -(float(s[i, j]) / tau - math.log(sum(math.exp(z) for z in tail)))
    return total / s.shape[0]


def test_hand_derived_single_anchor():
    # one anchor (row 0), candidates 1..3 with student sims .5 .2 .9 and teacher scores 1 3 2:
    # teacher order = (col 2: .2), (col 3: .9), (col 1: .5); with tau = 1,
    # L = -[.2 - log(e^.2 + e^.9 + e^.5)] - [.9 - log(e^.9 + e^.5)] - [.5 - log(e^.5)]
    s = torch.tensor([[1.0, 0.5, 0.2, 0.9]], dtype=torch.float64)
    t = torch.tensor([[9.0, 1.0, 3.0, 2.0]], dtype=torch.float64)
    neg = torch.tensor([[False, True, True, True]])
    want = -(0.2 - math.log(math.exp(0.2) + math.exp(0.9) + math.exp(0.5))) - (
        0.9 - math.log(math.exp(0.9) + math.exp(0.5))
    )
    got, stats = partial_ranking_loss(s, t, 1.0, k=None, valid_threshold=None, negatives=neg)
    assert got.item() == pytest.approx(want, abs=1e-12)
    assert stats["valid_per_anchor"] == 3
    # validity cut at teacher score 2.5: only c_1 (teacher 3) is valid, the others stay in its denominator
    got, stats = partial_ranking_loss(s, t, 1.0, k=None, valid_threshold=2.5, negatives=neg)
    assert got.item() == pytest.approx(
        -(0.2 - math.log(math.exp(0.2) + math.exp(0.9) + math.exp(0.5))), abs=1e-12
    )
    assert stats["valid_per_anchor"] == 1
    # K = 2 mines cols 3 (.9) and 1 (.5) by student similarity; teacher order: col 3 (2) then col 1 (1)
    got, _ = partial_ranking_loss(s, t, 1.0, k=2, valid_threshold=None, negatives=neg)
    assert got.item() == pytest.approx(-(0.9 - math.log(math.exp(0.9) + math.exp(0.5))), abs=1e-12)


@pytest.mark.parametrize("k,thr", [(None, None), (4, None), (4, 0.0), (3, 0.5), (20, -0.3)])
def test_matches_loop_reference(k, thr):
    g = torch.Generator().manual_seed(0)
    s = torch.rand(6, 7, generator=g, dtype=torch.float64) * 2 - 1
    t = torch.randn(6, 7, generator=g, dtype=torch.float64)
    neg = torch.rand(6, 7, generator=g) > 0.25
    neg[:, 0] = True
    got, _ = partial_ranking_loss(s, t, 0.2, k=k, valid_threshold=thr, negatives=neg)
    assert_close(
        got, torch.tensor(_reference(s, t, 0.2, k, thr, neg), dtype=torch.float64), atol=1e-10, name="cprd"
    )


def test_perfect_order_has_lower_loss_and_gradcheck():
    t = torch.tensor([[0.0, 3.0, 2.0, 1.0]], dtype=torch.float64)
    good = torch.tensor([[1.0, 0.9, 0.5, 0.1]], dtype=torch.float64)  # same order as the teacher
    bad = torch.tensor([[1.0, 0.1, 0.5, 0.9]], dtype=torch.float64)  # reversed
    neg = torch.tensor([[False, True, True, True]])
    lg, _ = partial_ranking_loss(good, t, 0.1, k=None, valid_threshold=None, negatives=neg)
    lb, _ = partial_ranking_loss(bad, t, 0.1, k=None, valid_threshold=None, negatives=neg)
    assert lg < lb
    g = torch.Generator().manual_seed(1)
    s = torch.rand(4, 4, generator=g, dtype=torch.float64)
    tt = torch.randn(4, 4, generator=g, dtype=torch.float64)
    check_gradients(lambda x: partial_ranking_loss(x, tt, 0.3, k=2, valid_threshold=-0.5)[0], s)


def test_teacher_gets_no_gradient_and_bad_input():
    s = torch.rand(3, 3, requires_grad=True)
    t = torch.rand(3, 3, requires_grad=True)
    partial_ranking_loss(s, t, 0.1, k=2, valid_threshold=None)[0].backward()
    assert t.grad is None and s.grad is not None
    with pytest.raises(ValueError, match="equal 2-D"):
        partial_ranking_loss(torch.rand(3, 3), torch.rand(3, 4), 0.1, k=2, valid_threshold=None)
    with pytest.raises(ValueError, match="non-square"):
        partial_ranking_loss(torch.rand(3, 4), torch.rand(3, 4), 0.1, k=2, valid_threshold=None)


def test_itc_and_kl():
    # ITC of a 2x2 matrix by hand: rows and columns are symmetric here, CE = -log softmax on the diagonal
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    want = -math.log(math.exp(10) / (math.exp(10) + 1))
    assert itc_loss(s, 0.1).item() == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="square"):
        itc_loss(torch.rand(2, 3), 0.1)
    # KL is zero when the student's tempered distribution equals the teacher's
    t = torch.randn(4, 5, dtype=torch.float64)
    assert kl_distill_loss(t * 0.1, t, 0.1, teacher_temp=1.0).item() == pytest.approx(0.0, abs=1e-12)
    assert kl_distill_loss(torch.zeros(4, 5, dtype=torch.float64), t, 0.1).item() > 0
    check_gradients(lambda x: kl_distill_loss(x, t, 0.5), torch.rand(4, 5, dtype=torch.float64))
