"""The losses against hand derivations and float64 loop references, gradcheck, padding, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from dice_nlp.losses import cross_entropy, dice_loss, focal_loss, paper_class_weights, weighted_cross_entropy

from xentlab.testing import assert_close, check_gradients


def _dice_reference(logits, target, alpha, smooth, square, batch=False, ignore_index=-100):
    """Straight-line float64 loops over tokens and classes (no torch vectorisation)."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1, logits.shape[-1])
    t = np.asarray(target).reshape(-1)
    keep = t != ignore_index
    c_num = z.shape[1]
    per_token = np.zeros(len(t))
    num = np.zeros(c_num)
    den = np.zeros(c_num)
    for i in range(len(t)):
        if not keep[i]:
            continue
        if c_num == 1:
            probs, ys = [1 / (1 + math.exp(-z[i, 0]))], [float(t[i])]
        else:
            e = np.exp(z[i] - z[i].max())
            probs, ys = list(e / e.sum()), [float(t[i] == c) for c in range(c_num)]
        for c, (p, y) in enumerate(zip(probs, ys)):
            pt = (1 - p) ** alpha * p
            k = 2 if square else 1
            per_token[i] += 1 - (2 * pt * y + smooth) / (pt**k + y**k + smooth)
            num[c] += 2 * pt * y
            den[c] += pt**k + y**k
    if batch:
        return float(np.sum(1 - (num + smooth) / (den + smooth)))
    return per_token, keep


def test_hand_values_two_classes():
    # logits (0, 0) -> p = (0.5, 0.5), target 0, s = 1, alpha = 0:
    # squared:  class 0 (y=1): 1 - (2*.5 + 1)/(.25 + 1 + 1) = 1/9;  class 1 (y=0): 1 - 1/(.25 + 1) = 1/5
    # linear:   class 0: 1 - 2/(.5 + 1 + 1) = 1/5;                   class 1: 1 - 1/(.5 + 1) = 1/3
    z, t = torch.zeros(1, 2, dtype=torch.float64), torch.tensor([0])
    assert_close(dice_loss(z, t, alpha=0.0), torch.tensor(1 / 9 + 1 / 5, dtype=torch.float64))
    assert_close(
        dice_loss(z, t, alpha=0.0, square_denominator=False), torch.tensor(1 / 5 + 1 / 3, dtype=torch.float64)
    )
    # alpha = 1: p~ = (1 - .5) * .5 = .25; squared: 1 - 1.5/(.0625 + 2) = 3/11 and 1 - 1/1.0625 = 1/17
    assert_close(dice_loss(z, t, alpha=1.0), torch.tensor(3 / 11 + 1 / 17, dtype=torch.float64))
    # binary (one logit 0, label 1): p = .5, squared, alpha 0 -> 1 - 2/2.25 = 1/9
    assert_close(dice_loss(torch.zeros(1, 1, dtype=torch.float64), torch.tensor([1]), alpha=0.0),
                 torch.tensor(1 / 9, dtype=torch.float64))  # fmt: skip


@pytest.mark.parametrize("square", [True, False])
@pytest.mark.parametrize(("alpha", "smooth"), [(0.0, 1.0), (0.01, 1.0), (0.3, 0.5)])
@pytest.mark.parametrize("num_classes", [1, 5])
def test_matches_float64_reference(square, alpha, smooth, num_classes):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 7, num_classes, generator=g, dtype=torch.float64) * 3
    t = torch.randint(0, max(num_classes, 2), (3, 7), generator=g)
    t[0, 5:] = -100  # padding
    per_token, keep = _dice_reference(z.numpy(), t.numpy(), alpha, smooth, square)
    kw = {"alpha": alpha, "smooth": smooth, "square_denominator": square}
    none = dice_loss(z, t, reduction="none", **kw)
    assert none.shape == t.shape
    assert_close(none, torch.from_numpy(per_token).reshape(3, 7))
    assert_close(dice_loss(z, t, **kw), torch.tensor(per_token[keep].mean(), dtype=torch.float64))
    assert_close(dice_loss(z, t, reduction="sum", **kw), torch.tensor(per_token.sum(), dtype=torch.float64))
    batch = _dice_reference(z.numpy(), t.numpy(), alpha, smooth, square, batch=True)
    assert_close(dice_loss(z, t, batch_dice=True, **kw), torch.tensor(batch, dtype=torch.float64))


def test_alpha_zero_is_plain_dice():
    # DL of the paper (Eq. 10, squared): 1 - (2 p y + s)/(p^2 + y^2 + s), summed over classes
    g = torch.Generator().manual_seed(1)
    z, t = torch.randn(20, 4, generator=g, dtype=torch.float64), torch.randint(0, 4, (20,), generator=g)
    p, y = torch.softmax(z, -1), F.one_hot(t, 4).double()
    plain = (1 - (2 * p * y + 1) / (p**2 + y**2 + 1)).sum(-1).mean()
    assert_close(dice_loss(z, t, alpha=0.0), plain)
    # and a small alpha only moves it a little, towards larger loss on confident predictions
    assert abs(dice_loss(z, t, alpha=0.01) - plain) < 0.02


def test_gradcheck_and_finite_gradient_when_saturated():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 1, 2, -100, 1, 0])
    check_gradients(lambda x: dice_loss(x, t, alpha=0.3), z)
    check_gradients(lambda x: dice_loss(x, t, alpha=0.01, square_denominator=False), z)
    check_gradients(lambda x: dice_loss(x, t, alpha=0.01, batch_dice=True), z)
    check_gradients(lambda x: focal_loss(x, t, gamma=2.0), z)
    # softmax saturates to p == 1.0 in float32; (1 - p)^alpha must not give an infinite/NaN gradient
    sat = torch.tensor([[40.0, -40.0, -40.0]], requires_grad=True)
    dice_loss(sat, torch.tensor([0]), alpha=0.01).backward()
    assert torch.isfinite(sat.grad).all()


def test_padding_is_ignored():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2, 5, 4, generator=g, requires_grad=True)
    t = torch.randint(0, 4, (2, 5), generator=g)
    t[1, 3:] = -100
    for fn in (
        lambda a, b: dice_loss(a, b),
        lambda a, b: dice_loss(a, b, batch_dice=True),
        focal_loss,
        cross_entropy,
    ):
        full = fn(z, t)
        (grad,) = torch.autograd.grad(full, z)
        assert torch.all(grad[1, 3:] == 0)
        kept = t != -100
        assert_close(full, fn(z[kept].unsqueeze(0), t[kept].unsqueeze(0)))


def test_focal_hand_values_and_ce_limit():
    # logits (0, 0): p_t = .5; FL = -(1 - .5)^2 log .5 = .25 ln 2
    z, t = torch.zeros(1, 2, dtype=torch.float64), torch.tensor([1])
    assert_close(focal_loss(z, t, gamma=2.0), torch.tensor(0.25 * math.log(2), dtype=torch.float64))
    # official alpha list multiplies log p_t: weight 3 for class 1
    assert_close(
        focal_loss(z, t, gamma=2.0, class_weights=[1.0, 3.0]),
        torch.tensor(0.75 * math.log(2), dtype=torch.float64),
    )
    g = torch.Generator().manual_seed(4)
    zz, tt = torch.randn(10, 5, generator=g, dtype=torch.float64), torch.randint(0, 5, (10,), generator=g)
    assert_close(focal_loss(zz, tt, gamma=0.0), F.cross_entropy(zz, tt))
    # binary: one logit z -> columns [log(1 - sigmoid z), log sigmoid z]
    zb = torch.tensor([[0.7]], dtype=torch.float64)
    pb = torch.sigmoid(zb)[0, 0]
    assert_close(focal_loss(zb, torch.tensor([1]), gamma=2.0), -((1 - pb) ** 2) * torch.log(pb))


def test_paper_class_weights_and_weighted_ce():
    # alpha_t = lg((n - n_t)/n_t + K), n = 100, K = 1: lg(10/90 + 1) and lg(90/10 + 1) = 1
    w = paper_class_weights([90, 10], k=1.0)
    assert_close(w, torch.tensor([math.log10(10 / 90 + 1), 1.0]))
    g = torch.Generator().manual_seed(5)
    z, t = torch.randn(3, 4, 2, generator=g), torch.randint(0, 2, (3, 4), generator=g)
    t[0, 0] = -100
    # paper Eq. 2: WCE = -(1/N) sum_i alpha_{y_i} log p_{i, y_i}, N = the kept tokens (not sum_i alpha_{y_i})
    per_token = F.cross_entropy(
        z.reshape(-1, 2), t.reshape(-1), weight=w, ignore_index=-100, reduction="none"
    )
    assert_close(weighted_cross_entropy(z, t, w), per_token.sum() / (t != -100).sum())
    assert_close(weighted_cross_entropy(z, t, w, reduction="sum"), per_token.sum())
    with pytest.raises(ValueError, match="non-negative"):
        paper_class_weights([-1, 3])


def test_weighted_ce_divides_by_the_token_count_as_paper_eq2():
    # Hand derivation in float64: logits (0, 0) and (ln 3, 0) -> p = (1/2, 1/2) and (3/4, 1/4); targets 1 and 0;
    # weights w = (0.5, 2). Paper Eq. 2, -(1/N) sum_i w_{y_i} log p_{i,y_i}:
    #   -(2 log(1/2) + 0.5 log(3/4)) / 2 = (2 ln 2 + 0.5 ln(4/3)) / 2.
    # torch's weighted mean would divide by w_1 + w_0 = 2.5 instead of N = 2.
    z = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]], dtype=torch.float64)
    t = torch.tensor([1, 0])
    w = torch.tensor([0.5, 2.0], dtype=torch.float64)
    expected = (2 * math.log(2) + 0.5 * math.log(4 / 3)) / 2
    assert_close(weighted_cross_entropy(z, t, w), torch.tensor(expected, dtype=torch.float64))
    # padding counts in neither the sum nor N
    zp, tp = torch.cat([z, torch.zeros(1, 2, dtype=torch.float64)]), torch.tensor([1, 0, -100])
    assert_close(weighted_cross_entropy(zp, tp, w), torch.tensor(expected, dtype=torch.float64))


def test_clear_errors():
    z = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="same leading shape"):
        dice_loss(z, torch.zeros(5, dtype=torch.long))
    with pytest.raises(TypeError, match="integer class indices"):
        dice_loss(z, torch.zeros(4))
    with pytest.raises(ValueError, match=r"target values must lie in \[0, 3\)"):
        dice_loss(z, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match=r"lie in \[0, 2\)"):
        dice_loss(torch.zeros(2, 1), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="reduction"):
        dice_loss(z, torch.zeros(4, dtype=torch.long), reduction="avg")
    with pytest.raises(ValueError, match="batch_dice"):
        dice_loss(z, torch.zeros(4, dtype=torch.long), batch_dice=True, reduction="none")
    with pytest.raises(ValueError, match="alpha and smooth"):
        dice_loss(z, torch.zeros(4, dtype=torch.long), alpha=-1.0)
    with pytest.raises(ValueError, match="one entry per class"):
        focal_loss(z, torch.zeros(4, dtype=torch.long), class_weights=[1.0, 2.0])


def test_more_clear_errors():
    z = torch.randn(4, 3, dtype=torch.float64)
    t = torch.tensor([0, 2, 1, 0])
    with pytest.raises(TypeError, match="logits must be floating"):
        dice_loss(z.long(), t)
    with pytest.raises(TypeError, match="integer class indices"):
        dice_loss(z, t.bool())
    with pytest.raises(ValueError, match="alpha and smooth"):
        dice_loss(z, t, smooth=-1.0)
    with pytest.raises(ValueError, match="gamma must be"):
        focal_loss(z, t, gamma=-0.5)
    with pytest.raises(ValueError, match="K must be > 0"):
        paper_class_weights([3, 1, 2], k=0.0)


def test_all_padding_batch_gives_zero_not_nan():
    # "mean" divides by the kept-token count clamped to 1: an all-padding batch contributes 0
    z = torch.randn(2, 3, 4, dtype=torch.float64)
    t = torch.full((2, 3), -100)
    assert dice_loss(z, t).item() == 0.0 and focal_loss(z, t).item() == 0.0


def test_focal_default_gamma_is_the_scripts_two_and_ce_keeps_the_shape():
    g = torch.Generator().manual_seed(5)
    z = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    t = torch.randint(0, 4, (2, 3), generator=g)
    assert_close(focal_loss(z, t), focal_loss(z, t, gamma=2.0))
    assert not torch.allclose(focal_loss(z, t), focal_loss(z, t, gamma=0.0))
    per = cross_entropy(z, t, reduction="none")
    assert per.shape == (2, 3)
    assert_close(per, F.cross_entropy(z.reshape(-1, 4), t.reshape(-1), reduction="none").reshape(2, 3))


def test_absent_class_gets_the_largest_present_weight():
    # counts (3, 0, 1), n = 4, K = 1: alpha_0 = lg(1/3 + 1) = lg(4/3), alpha_2 = lg(3 + 1) = lg 4, alpha_1 = lg 4
    w = paper_class_weights([3, 0, 1])
    assert_close(w, torch.tensor([math.log10(4 / 3), math.log10(4.0), math.log10(4.0)]), atol=1e-7)


def test_dice_defaults_are_the_official_scripts():
    # DICE_ALPHA=0.01, DICE_SMOOTH=1 and --dice_square in every released dice script (README)
    g = torch.Generator().manual_seed(6)
    z = torch.randn(5, 3, generator=g, dtype=torch.float64)
    t = torch.randint(0, 3, (5,), generator=g)
    assert_close(dice_loss(z, t), dice_loss(z, t, alpha=0.01, smooth=1.0, square_denominator=True))
    assert not torch.allclose(dice_loss(z, t), dice_loss(z, t, alpha=0.1))
