"""TraCoCo's losses against hand-computed values (derivations in the comments)."""

import math

import pytest
import torch
from tracoco.losses import (
    cbc_loss,
    dice_loss,
    negative_entropy,
    supervised_loss,
    translation_consistency,
)

from xentlab.testing import assert_close, check_gradients

LN2 = math.log(2.0)


def kl(q, p):
    return sum(qi * math.log(qi / pi) for qi, pi in zip(q, p))


# ----------------------------------------------------------------------------- supervised part


def test_dice_loss_hand_value():
    # p = [.5, 1, 0, .25], y = [1, 1, 0, 0]: sum(py) = 1.5, sum(p^2) = 1.3125, sum(y^2) = 2
    # loss = 1 - (2 * 1.5 + 1e-5) / (1.3125 + 2 + 1e-5)
    p = torch.tensor([[0.5, 1.0, 0.0, 0.25]], dtype=torch.float64)
    y = torch.tensor([[1, 1, 0, 0]])
    expected = 1 - (3 + 1e-5) / (3.3125 + 1e-5)
    assert_close(dice_loss(p, y), torch.tensor(expected, dtype=torch.float64))


def test_dice_loss_sums_over_the_whole_batch():
    # The official Dice pools all samples: two samples give the pooled value, not the mean of two.
    p = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[1, 0], [1, 0]])
    # pooled: sum(py) = 1, sum(p^2) = 1, sum(y^2) = 2 -> 1 - (2 + s) / (3 + s)
    assert_close(dice_loss(p, y), torch.tensor(1 - (2 + 1e-5) / (3 + 1e-5), dtype=torch.float64))
    with pytest.raises(ValueError, match="shapes differ"):
        dice_loss(p, y[:1])


def test_supervised_loss_is_half_ce_plus_dice():
    # Zero logits: p = (1/2, 1/2) everywhere, so CE = ln 2. Labels [1, 0]: sum(p y) = 1/2,
    # sum(p^2) = 1/2, sum(y^2) = 1 -> Dice = 1 - (1 + s) / (1.5 + s); loss = (ln 2 + Dice) / 2.
    logits = torch.zeros(1, 2, 2, 1, 1, dtype=torch.float64)
    labels = torch.tensor([[[[1]], [[0]]]])
    loss, stats = supervised_loss(logits, labels)
    dice = 1 - (1 + 1e-5) / (1.5 + 1e-5)
    assert_close(loss, torch.tensor(0.5 * (LN2 + dice), dtype=torch.float64))
    assert stats["ce"] == pytest.approx(LN2)
    with pytest.raises(ValueError, match="binary"):
        supervised_loss(torch.zeros(1, 3, 2, 1, 1), labels)


# ----------------------------------------------------------------- translation consistency (TC)


def _ranges(n):
    return [((0, n), (0, 1), (0, 1))]


def test_tc_class_axis_is_kl_per_voxel_over_classes():
    # One overlap voxel, a = (0, 0) -> p = (1/2, 1/2); b = (0, ln 3) -> q = (1/4, 3/4).
    # F.kl_div(..., 'none').mean() averages the C = 2 elementwise terms: KL(q || p) / 2.
    a = torch.zeros(1, 2, 1, 1, 1, dtype=torch.float64)
    b = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64).view(1, 2, 1, 1, 1)
    loss, overlaps = translation_consistency(
        a, b, _ranges(1), _ranges(1), logit_clamp=False, softmax_axis="class"
    )
    assert_close(loss, torch.tensor(kl([0.25, 0.75], [0.5, 0.5]) / 2, dtype=torch.float64))
    assert len(overlaps) == 2


def test_tc_official_axis_compares_distributions_over_x():
    # The official code softmaxes dim 1 of the per-sample tensor [C, x, y, z], i.e. over x.
    # b varies along x identically for both classes: b[c, x] = x ln 3 (x = 0, 1); a = 0.
    # Over classes both are uniform (class-axis KL = 0); over x, q = (1/4, 3/4) vs p = (1/2, 1/2)
    # for each class: elementwise mean over C * x = 4 terms = 2 KL / 4 = KL / 2.
    a = torch.zeros(1, 2, 2, 1, 1, dtype=torch.float64)
    b = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64).view(1, 1, 2, 1, 1).expand(1, 2, 2, 1, 1)
    official, _ = translation_consistency(a, b, _ranges(2), _ranges(2), logit_clamp=False, softmax_axis="x")
    by_class, _ = translation_consistency(
        a, b, _ranges(2), _ranges(2), logit_clamp=False, softmax_axis="class"
    )
    assert_close(official, torch.tensor(kl([0.25, 0.75], [0.5, 0.5]) / 2, dtype=torch.float64))
    assert_close(by_class, torch.tensor(0.0, dtype=torch.float64), atol=1e-12)


def test_tc_logit_clamp_matches_formula_and_blocks_gradient_outside():
    # a = (-5, 5) clamps to (1e-6, 1); b = (0, 0) clamps to (1e-6, 1e-6) -> q uniform.
    a = torch.tensor([-5.0, 5.0], dtype=torch.float64).view(1, 2, 1, 1, 1).requires_grad_()
    b = torch.tensor([0.0, 0.0], dtype=torch.float64).view(1, 2, 1, 1, 1).requires_grad_()
    loss, overlaps = translation_consistency(
        a, b, _ranges(1), _ranges(1), logit_clamp=True, softmax_axis="class"
    )
    e = math.exp(1 - 1e-6)
    p = [1 / (1 + e), e / (1 + e)]  # softmax(1e-6, 1)
    assert_close(loss, torch.tensor(kl([0.5, 0.5], p) / 2, dtype=torch.float64))
    assert_close(overlaps[0].flatten(), torch.tensor([1e-6, 1.0], dtype=torch.float64))
    loss.backward()
    assert torch.all(a.grad == 0) and torch.all(b.grad == 0)  # every logit was outside (1e-6, 1)


def test_tc_uses_the_overlap_ranges_and_sums_over_samples():
    # A "network" that sees the same field at both positions gives identical overlap logits:
    # field f over x = 0..9, crop a = f[3:9], crop b = f[1:7]; overlap = f[3:7] = a[0:4] = b[2:6].
    torch.manual_seed(0)
    field = torch.randn(2, 10, 1, 1, dtype=torch.float64)
    a = field[:, 3:9][None].repeat(2, 1, 1, 1, 1)
    b = field[:, 1:7][None].repeat(2, 1, 1, 1, 1)
    ra = [((0, 4), (0, 1), (0, 1))] * 2
    rb = [((2, 6), (0, 1), (0, 1))] * 2
    for axis in ("x", "class"):
        loss, _ = translation_consistency(a, b, ra, rb, logit_clamp=False, softmax_axis=axis)
        assert_close(loss, torch.tensor(0.0, dtype=torch.float64), atol=1e-12)
    # Misaligned ranges give a positive loss; two identical samples give twice one sample's loss.
    wrong = [((0, 4), (0, 1), (0, 1))] * 2
    two, _ = translation_consistency(a, b, ra, wrong, logit_clamp=False, softmax_axis="class")
    one, _ = translation_consistency(a[:1], b[:1], ra[:1], wrong[:1], logit_clamp=False, softmax_axis="class")
    assert two.item() > 0
    assert_close(two, 2 * one)


def test_tc_skips_empty_overlaps_and_checks_inputs():
    a = torch.randn(2, 2, 4, 4, 4)
    empty = [((0, 0), (0, 4), (0, 4)), ((0, 4), (0, 4), (0, 4))]
    loss, overlaps = translation_consistency(a, a.clone(), empty, empty, logit_clamp=False)
    assert len(overlaps) == 2  # only sample 1 contributes (a and b)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="softmax_axis"):
        translation_consistency(a, a, empty, empty, softmax_axis="y")
    with pytest.raises(ValueError, match="one overlap range per sample"):
        translation_consistency(a, a, empty[:1], empty[:1])


def test_tc_gradcheck():
    ra = [((0, 3), (0, 2), (1, 3))]
    rb = [((1, 4), (1, 3), (0, 2))]

    def f(a, b):
        return translation_consistency(a, b, ra, rb, logit_clamp=False, softmax_axis="x")[0]

    check_gradients(f, torch.randn(1, 2, 4, 3, 3), torch.randn(1, 2, 4, 3, 3))


# ---------------------------------------------------------------------- negative entropy


def test_negative_entropy_hand_values():
    # (0, 0): sum p log p = ln(1/2) = -ln 2; (0, ln 3): 1/4 ln 1/4 + 3/4 ln 3/4. Mean over the list.
    z1 = torch.zeros(2, 1, 1, 1, dtype=torch.float64)
    z2 = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64).view(2, 1, 1, 1)
    expected = (-LN2 + 0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / 2
    assert_close(negative_entropy([z1, z2]), torch.tensor(expected, dtype=torch.float64))
    assert negative_entropy([]).item() == 0.0


def test_negative_entropy_prob_clamp_keeps_saturated_voxels_finite():
    # softmax(0, 200) underflows to p = (0, 1) in float32: 0 * log 0 = nan without the BraTS clamp;
    # with p clamped to 1e-7 the value is 1e-7 ln 1e-7 + 1 ln 1.
    z = torch.tensor([0.0, 200.0]).view(2, 1, 1, 1)
    assert torch.isnan(negative_entropy([z]))
    assert negative_entropy([z], prob_clamp=1e-7).item() == pytest.approx(1e-7 * math.log(1e-7), rel=1e-4)


# ----------------------------------------------------------------------------------- CBC


def _voxels(*pairs):
    """Logits [1, 2, n, 1, 1] from (l0, l1) pairs, one per voxel along x."""
    return torch.tensor(pairs, dtype=torch.float64).T.reshape(1, 2, len(pairs), 1, 1)


def test_cbc_hand_value():
    # teacher -> q, y = argmax, and the masks (positive: max q >= .65; negative: min q < .1):
    #   v1 (0, ln 4)  q = (.2, .8)   y = 1  positive (w .8)
    #   v2 (0, ln 19) q = (.05, .95) y = 1  positive (w .95) and negative (w .05)
    #   v3 (0, 0)     q = (.5, .5)   y = 0  neither
    #   v4 (ln 3, 0)  q = (.75, .25) y = 0  positive (w .75)
    # student p: v1 (.5, .5), v2 (.25, .75), v3 anything, v4 (.8, .2)
    # positive = mean(.8 ln 2, .95 (-ln .75), .75 (-ln .8)); negative = .05 (-ln(1 - p[0])) = .05 (-ln .75)
    teacher = _voxels((0, math.log(4)), (0, math.log(19)), (0, 0), (math.log(3), 0))
    student = _voxels((0, 0), (0, math.log(3)), (1, 2), (math.log(4), 0))
    loss, stats = cbc_loss(student, teacher, threshold=0.65, neg_threshold=0.1)
    positive = (0.8 * LN2 + 0.95 * -math.log(0.75) + 0.75 * -math.log(0.8)) / 3
    negative = 0.05 * -math.log(0.75)
    assert_close(loss, torch.tensor(positive + negative, dtype=torch.float64))
    assert stats["pos_frac"] == pytest.approx(0.75) and stats["neg_frac"] == pytest.approx(0.25)


def test_cbc_negative_term_clamps_and_empty_masks_give_zero():
    # Nothing confident: both masks empty -> 0, not nan.
    flat = _voxels((0, 0), (0.1, 0))
    loss, _ = cbc_loss(flat, flat)
    assert loss.item() == 0.0
    # Student certain of the wrong class on a negative voxel: 1 - p[1 - y] underflows -> clamp 1e-6.
    teacher = _voxels((0, math.log(99)))  # q = (.01, .99): positive w .99, negative w .01
    student = _voxels((60, 0))  # p = (1, ~0)
    loss, stats = cbc_loss(student, teacher)
    assert stats["cbc_neg"] == pytest.approx(0.01 * -math.log(1e-6), rel=1e-6)
    assert stats["cbc_pos"] == pytest.approx(0.99 * 60, rel=1e-6)


def test_cbc_gradient_reaches_the_student_only():
    t0 = torch.randn(2, 2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    student = torch.randn(2, 2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    loss, _ = cbc_loss(student, 3 * t0)  # the pseudo-labeller's logits are detached inside
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert t0.grad is None
    with pytest.raises(ValueError, match="binary"):
        cbc_loss(torch.zeros(1, 3, 2, 2, 2), torch.zeros(1, 3, 2, 2, 2))
    fixed = (torch.randn(1, 2, 3, 2, 2, dtype=torch.float64) * 3).detach()
    check_gradients(lambda s: cbc_loss(s, fixed)[0], torch.randn(1, 2, 3, 2, 2))


def test_supervised_dice_uses_the_foreground_probability():
    # logits (0, ln 3) on the foreground voxel and (0, 0) on the background one: p1 = (.75, .5)
    # CE = (-ln .75 + ln 2) / 2; Dice on p1 with y = (1, 0): 1 - (2 * .75 + s) / (.5625 + .25 + 1 + s)
    logits = torch.tensor([[0.0, 0.0], [math.log(3), 0.0]], dtype=torch.float64).reshape(1, 2, 2, 1, 1)
    labels = torch.tensor([[[[1]], [[0]]]])
    loss, stats = supervised_loss(logits, labels)
    ce = (-math.log(0.75) + LN2) / 2
    dice = 1 - (1.5 + 1e-5) / (1.8125 + 1e-5)
    assert_close(loss, torch.tensor(0.5 * (ce + dice), dtype=torch.float64))
    assert stats["dice_loss"] == pytest.approx(dice)


def test_tc_defaults_are_the_official_quirks():
    # defaults: logit clamp to [1e-6, 1] and the softmax over the first spatial axis (official spatial_loss)
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(2, 2, 3, 2, 2, generator=g, dtype=torch.float64).unbind(0)
    a, b = a[None], b[None]
    r = [((0, 3), (0, 2), (0, 2))]
    got, _ = translation_consistency(a, b, r, r)
    want, _ = translation_consistency(a, b, r, r, logit_clamp=True, softmax_axis="x")
    assert_close(got, want)
    for other in ({"logit_clamp": False}, {"softmax_axis": "class"}):
        assert abs(translation_consistency(a, b, r, r, **other)[0].item() - got.item()) > 1e-4


def test_cbc_thresholds_default_and_boundary():
    # q = (.15, .85): positive with the default .65, but not negative with the default .1 (min q = .15)
    teacher = _voxels((0, math.log(17 / 3)))
    loss, stats = cbc_loss(_voxels((0, 0)), teacher)
    assert stats["cbc_neg"] == 0.0 and loss.item() == pytest.approx(0.85 * LN2)
    # max q >= threshold is inclusive: q = (.5, .5) exactly with threshold .5 -> weight .5, CE ln 2
    flat = _voxels((0, 0))
    loss, stats = cbc_loss(flat, flat, threshold=0.5)
    assert stats["pos_frac"] == 1.0 and loss.item() == pytest.approx(0.5 * LN2)
