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
    # the cut exactly at teacher score 2 is inclusive ("valid when its teacher score is >= this"):
    # c_1 (3) and c_2 (2) are valid, the same loss as without a cut (c_3 adds -[.5 - log e^.5] = 0)
    got, stats = partial_ranking_loss(s, t, 1.0, k=None, valid_threshold=2.0, negatives=neg)
    assert got.item() == pytest.approx(want, abs=1e-12)
    assert stats["valid_per_anchor"] == 2
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


def test_kl_hand_values_pin_both_temperatures():
    # audit 3: KL(p_t || p_s) with p_t = softmax(t / T), p_s = softmax(s / tau), by hand (float64).
    # s / tau = (0, ln 2) -> p_s = (1/3, 2/3); t / T = (0, ln 3) -> p_t = (1/4, 3/4):
    # KL = 1/4 ln((1/4) / (1/3)) + 3/4 ln((3/4) / (2/3)) = 1/4 ln(3/4) + 3/4 ln(9/8)
    s = torch.tensor([[0.0, 0.5 * math.log(2.0)]], dtype=torch.float64)
    t = torch.tensor([[0.0, 2.0 * math.log(3.0)]], dtype=torch.float64)
    want = 0.25 * math.log(0.75) + 0.75 * math.log(9 / 8)
    assert kl_distill_loss(s, t, 0.5, teacher_temp=2.0).item() == pytest.approx(want, abs=1e-12)
    # rows are averaged: a second row with KL 0.5 ln(9/8) (p_t = (1/2, 1/2) vs p_s = (1/3, 2/3) at T = 1)
    s2 = torch.cat([s, torch.tensor([[0.0, 0.5 * math.log(2.0)]], dtype=torch.float64)])
    t2 = torch.cat([t, torch.zeros(1, 2, dtype=torch.float64)])
    row2 = 0.5 * math.log(1.5) + 0.5 * math.log(0.75)
    got = kl_distill_loss(s2, t2 / torch.tensor([[2.0], [1.0]], dtype=torch.float64), 0.5, teacher_temp=1.0)
    assert got.item() == pytest.approx(0.5 * (want + row2), abs=1e-12)


def _directed_case():
    """3 x 3 batch, off-diagonal negatives. Teacher-valid (>= -6) pairs: (0,1), (1,2), (2,0); the other
    three score -10. Student similarities s01 .9 > s02 .8 > s12 .7 > s10 .6 > s20 .5 > s21 .4, so with
    K = 1 every image row mines a valid caption (rows: 1, 1, 1 valid) while the caption rows (columns)
    mine (1,0), (0,1), (0,2): 0, 1, 0 valid. Valid negatives per anchor: 1 (i2t), 1/3 (t2i)."""
    s = torch.tensor([[1.0, 0.9, 0.8], [0.6, 1.0, 0.7], [0.5, 0.4, 1.0]], dtype=torch.float64)
    t = torch.tensor([[5.0, 0.0, -10.0], [-10.0, 5.0, 0.0], [0.0, -10.0, 5.0]], dtype=torch.float64)
    return s, t, ~torch.eye(3, dtype=torch.bool)


def test_distill_term_averages_loss_and_stats_over_both_directions():
    # audit 3 (defect): the valid-negative statistic was the text->image direction's alone (the loop kept
    # the last direction's stats), while the loss averages both directions; both must be averaged.
    from cprd.experiment import RunConfig, distill_term

    s, t, neg = _directed_case()
    cfg = RunConfig(arm="cprd", k=1, valid_threshold=-6.0)
    _, st_i2t = partial_ranking_loss(s, t, 0.1, k=1, valid_threshold=-6.0, negatives=neg)
    _, st_t2i = partial_ranking_loss(s.T, t.T, 0.1, k=1, valid_threshold=-6.0, negatives=neg.T)
    assert st_i2t["valid_per_anchor"] == pytest.approx(1.0)
    assert st_t2i["valid_per_anchor"] == pytest.approx(1 / 3)
    loss, stats = distill_term(cfg, s, t, 0.1, neg)
    assert stats["valid_per_anchor"] == pytest.approx(2 / 3, abs=1e-7)  # float32 counts
    assert stats["frac_with_valid"] == pytest.approx(0.5 * (1.0 + 1 / 3), abs=1e-7)
    # the loss: 0.5 (i2t + t2i), each the CPRD term of its direction (K = 4 here, so it is not 0)
    cfg4 = RunConfig(arm="cprd", k=4, valid_threshold=-6.0)
    want = 0.5 * (
        partial_ranking_loss(s, t, 0.1, k=4, valid_threshold=-6.0, negatives=neg)[0]
        + partial_ranking_loss(s.T, t.T, 0.1, k=4, valid_threshold=-6.0, negatives=neg.T)[0]
    )
    assert_close(distill_term(cfg4, s, t, 0.1, neg)[0], want, atol=1e-12, name="cprd both ways")
    # KL: the mean of the row-wise and the column-wise KL; no ranking statistic
    kl, kl_stats = distill_term(RunConfig(arm="kl", kl_temp=1.0), s, t, 0.1, neg)
    assert_close(kl, 0.5 * (kl_distill_loss(s, t, 0.1) + kl_distill_loss(s.T, t.T, 0.1)), atol=1e-12)
    assert kl_stats == {}


def test_itc_is_symmetric_over_rows_and_columns_by_hand():
    # an asymmetric 2x2 matrix (tau = 1): rows CE = -log(e / (e + 1)), -log(e^2 / (e^.5 + e^2));
    # columns (the transposed direction) CE = -log(e / (e + e^.5)), -log(e^2 / (1 + e^2));
    # ITC = 0.5 (row mean + column mean), and the two directions differ here
    s = torch.tensor([[1.0, 0.0], [0.5, 2.0]], dtype=torch.float64)
    e, e2, eh = math.e, math.exp(2.0), math.exp(0.5)
    rows = 0.5 * (-math.log(e / (e + 1)) - math.log(e2 / (eh + e2)))
    cols = 0.5 * (-math.log(e / (e + eh)) - math.log(e2 / (1 + e2)))
    assert abs(rows - cols) > 0.04
    assert itc_loss(s, 1.0).item() == pytest.approx(0.5 * (rows + cols), abs=1e-12)


def test_kl_teacher_is_a_fixed_target_and_shapes_must_match():
    s = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    t = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    kl_distill_loss(s, t, 0.1).backward()
    assert t.grad is None and s.grad is not None
    with pytest.raises(ValueError, match="differ in shape"):
        kl_distill_loss(torch.rand(3, 4), torch.rand(3, 1), 0.1)


def test_no_negatives_is_an_error():
    s = torch.tensor([[1.0, 0.5, 0.2, 0.9]], dtype=torch.float64)
    t = torch.tensor([[9.0, 1.0, 3.0, 2.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="no negatives"):
        partial_ranking_loss(
            s, t, 1.0, k=None, valid_threshold=None, negatives=torch.zeros(1, 4, dtype=torch.bool)
        )
