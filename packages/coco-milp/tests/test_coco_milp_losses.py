"""Losses vs naive float64 loops written straight from train.py's formulas, and gradchecks."""

import math

import torch
from coco_milp.losses import coco_loss, pool_weights, rank_loss, vcl_loss, weighted_bce

from xentlab.testing import assert_close, check_gradients


def _case(seed=0, n=12, q=5):
    g = torch.Generator().manual_seed(seed)
    probs = torch.rand(n, generator=g, dtype=torch.float64) * 0.98 + 0.01
    sols = (torch.rand(q, n, generator=g) < 0.4).double()
    sols[0] = 0.0  # a solution with no positive variable: skipped by VCL and rank (train.py)
    objs = torch.rand(q, generator=g, dtype=torch.float64) * 300 + 200
    return probs, sols, objs


def _weights(objs, T):
    e = [math.exp(-o / T) for o in objs.tolist()]
    return [x / sum(e) for x in e]


def test_pool_weights_softmax():
    objs = torch.tensor([300.0, 310.0, 400.0], dtype=torch.float64)
    assert_close(pool_weights(objs, 100.0), torch.tensor(_weights(objs, 100.0), dtype=torch.float64))


def test_vcl_matches_naive_loop():
    probs, sols, objs = _case()
    w = _weights(objs, 100.0)
    l = [math.log(p / (1 - p)) / 0.1 for p in probs.tolist()]
    z = sum(math.exp(v) for v in l)
    ref = 0.0
    for q in range(sols.shape[0]):
        pos = [j for j in range(len(l)) if sols[q, j] == 1]
        if pos:
            ref += -w[q] * math.log(sum(math.exp(l[j]) for j in pos) / z)
    assert_close(
        vcl_loss(probs, sols, objs, tau=0.1, temperature=100.0), torch.tensor(ref, dtype=torch.float64)
    )


def test_vcl_finite_at_extreme_logits():
    # exp(logit / 0.1) overflows float32 for p near 1; the logsumexp form stays finite
    probs = torch.tensor([1 - 1e-7, 0.5, 1e-7])
    sols = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert torch.isfinite(vcl_loss(probs, sols, torch.tensor([1.0, 2.0])))


def test_rank_matches_naive_loop():
    probs, sols, objs = _case(1)
    w = _weights(objs, 100.0)
    ref = 0.0
    for q in range(sols.shape[0]):
        pos = [j for j in range(len(probs)) if sols[q, j] == 1]
        neg = [j for j in range(len(probs)) if sols[q, j] == 0]
        if pos and neg:
            pairs = [max(0.0, 0.9 - (probs[i].item() - probs[j].item())) for i in pos for j in neg]
            ref += w[q] * sum(pairs) / len(pairs)
    assert_close(rank_loss(probs, sols, objs, margin=0.9), torch.tensor(ref, dtype=torch.float64))


def test_bce_matches_naive_loop():
    probs, sols, objs = _case(2)
    w = _weights(objs, 100.0)
    ref = 0.0
    for q in range(sols.shape[0]):
        for j in range(len(probs)):
            p = probs[j].item()
            ref -= w[q] * (math.log(p + 1e-8) if sols[q, j] == 1 else math.log(1 - p + 1e-8))
    assert_close(weighted_bce(probs, sols, objs), torch.tensor(ref, dtype=torch.float64))


def test_coco_is_vcl_plus_alpha_rank():
    probs, sols, objs = _case(3)
    expected = vcl_loss(probs, sols, objs) + 0.01 * rank_loss(probs, sols, objs)
    assert_close(coco_loss(probs, sols, objs, alpha=0.01), expected)


def test_gradients():
    probs, sols, objs = _case(4, n=6, q=3)
    check_gradients(lambda p: vcl_loss(p, sols, objs), probs)
    check_gradients(lambda p: weighted_bce(p, sols, objs), probs)
    # the hinge has kinks at p_i - p_j = m; random probs keep away from them
    check_gradients(lambda p: rank_loss(p, sols, objs, margin=0.3), probs)


def test_coco_passes_every_setting_through_and_defaults_are_train_py():
    # defaults = train.py (tau 0.1, margin 0.9, alpha 0.01, T = 100 for SC); non-default settings reach
    # both terms, the temperature included
    probs, sols, objs = _case(5)
    ref = vcl_loss(probs, sols, objs, tau=0.1, temperature=100.0) + 0.01 * rank_loss(
        probs, sols, objs, margin=0.9, temperature=100.0
    )
    assert_close(coco_loss(probs, sols, objs), ref)
    got = coco_loss(probs, sols, objs, tau=0.3, margin=0.5, alpha=0.7, temperature=20.0)
    ref = vcl_loss(probs, sols, objs, tau=0.3, temperature=20.0) + 0.7 * rank_loss(
        probs, sols, objs, margin=0.5, temperature=20.0
    )
    assert_close(got, ref)
    # the temperature matters here (objs span 200..500), so a term left at T = 100 would show
    assert not torch.allclose(
        rank_loss(probs, sols, objs, margin=0.5), rank_loss(probs, sols, objs, 0.5, 20.0)
    )
    assert not torch.allclose(vcl_loss(probs, sols, objs, tau=0.3), vcl_loss(probs, sols, objs, 0.3, 20.0))


def test_rank_hinge_is_zero_beyond_the_margin():
    # one solution, x = [1, 0, 0]: pairs (0, 1) and (0, 2) with p_0 - p_1 = 0.98 > m = 0.9 -> 0 and
    # p_0 - p_2 = 0.49 -> 0.9 - 0.49 = 0.41; mean over the 2 pairs = 0.205 (a single solution: w = 1)
    probs = torch.tensor([0.99, 0.01, 0.5], dtype=torch.float64)
    sols = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    got = rank_loss(probs, sols, torch.tensor([1.0], dtype=torch.float64), margin=0.9)
    assert abs(got.item() - 0.205) < 1e-12


def test_vcl_clamps_saturated_probabilities():
    # train.py clamps p to [1e-8, 1 - 1e-8] before the logit: p = 1 or 0 gives the clamped value, not inf/nan
    probs = torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64)
    sols = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    objs = torch.tensor([1.0, 2.0], dtype=torch.float64)
    got = vcl_loss(probs, sols, objs)
    assert torch.isfinite(got)
    assert_close(got, vcl_loss(probs.clamp(1e-8, 1 - 1e-8), sols, objs))
