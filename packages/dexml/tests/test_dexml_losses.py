"""dexml.losses vs float64 loop references of the official formulas, the one-positive identity, gradcheck."""

import math

import pytest
import torch
from dexml.losses import (
    MASK_VALUE,
    bce_loss,
    compute_loss,
    decoupled_softmax_loss,
    decoupled_softmax_sampled_loss,
    sample_one_positive,
    softmax_loss,
    softmax_sampled_loss,
)

from xentlab.testing import assert_close, check_gradients


def _case(b=5, l=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    sim = torch.randn(b, l, generator=g, dtype=torch.float64) * 4
    y = torch.rand(b, l, generator=g) < 0.3
    y[torch.arange(b), torch.randint(l, (b,), generator=g)] = True  # >= 1 positive per row
    return sim, y


def _ref_softmax(sim, y):
    # -(1/B) sum_i sum_{p in P_i} [s_ip - log sum_l e^{s_il}]
    tot = 0.0
    for i in range(sim.shape[0]):
        lse = math.log(sum(math.exp(v) for v in sim[i].tolist()))
        tot += sum(lse - sim[i, p].item() for p in y[i].nonzero().flatten().tolist())
    return tot / sim.shape[0]


def _ref_ds(sim, y):
    # -(1/B) sum_i (1/|P_i|) sum_p log( e^{s_p} / (e^{s_p} + sum_{l not in P_i} e^{s_l}) )
    tot = 0.0
    for i in range(sim.shape[0]):
        pos = y[i].nonzero().flatten().tolist()
        neg = sum(math.exp(sim[i, l].item()) for l in range(sim.shape[1]) if l not in pos)
        tot += sum(
            -math.log(math.exp(sim[i, p].item()) / (math.exp(sim[i, p].item()) + neg)) for p in pos
        ) / len(pos)
    return tot / sim.shape[0]


def _ref_bce(sim, y):
    b, l = sim.shape
    return sum(
        math.log1p(math.exp(sim[i, j].item())) - (sim[i, j].item() if y[i, j] else 0.0)
        for i in range(b)
        for j in range(l)
    ) / (b * l)


@pytest.mark.parametrize("seed", [0, 1])
def test_losses_match_loop_references(seed):
    sim, y = _case(seed=seed)
    assert_close(
        softmax_loss(sim, y), torch.tensor(_ref_softmax(sim, y), dtype=torch.float64), name="softmax"
    )
    # DS: the -100 mask contributes |P| * e^-100 to the denominator, ~1e-44 relative: below float64 eps
    assert_close(
        decoupled_softmax_loss(sim, y), torch.tensor(_ref_ds(sim, y), dtype=torch.float64), name="ds"
    )
    assert_close(bce_loss(sim, y), torch.tensor(_ref_bce(sim, y), dtype=torch.float64), name="bce")


def test_one_positive_ds_equals_softmax():
    # with |P_i| = 1 the "other positives" set is empty, so DS's denominator e^{s_p} + sum_neg = sum_all
    sim, _ = _case(b=6, l=11, seed=3)
    y = torch.zeros_like(sim, dtype=torch.bool)
    y[torch.arange(6), torch.tensor([0, 3, 5, 10, 2, 2])] = True
    assert_close(decoupled_softmax_loss(sim, y), softmax_loss(sim, y), name="ds vs softmax, 1 positive")
    # and DS with sampling is deterministic then (the only positive is always sampled)
    assert_close(decoupled_softmax_sampled_loss(sim, y), softmax_loss(sim, y), name="ds_sample, 1 positive")


def test_multi_positive_ds_differs_and_ignores_other_positive_scores():
    sim, y = _case(seed=4)
    assert (y.sum(1) > 1).any()
    assert not torch.allclose(decoupled_softmax_loss(sim, y), softmax_loss(sim, y))
    # raising one positive's score lowers its own term but cannot affect the other positives' terms:
    # the ds gradient w.r.t. s_q through another positive's denominator is zero
    sim = sim.clone().requires_grad_(True)
    decoupled_softmax_loss(sim, y).backward()
    i = int((y.sum(1) > 1).nonzero()[0])
    pos = y[i].nonzero().flatten()
    n = len(pos)
    for p in pos.tolist():
        # d/ds_p of -(1/(B n)) log sigma_p  with sigma_p = e^{s_p}/(e^{s_p}+N): -(1/(B n)) (1 - sigma_p)
        lneg = torch.logsumexp(sim.detach()[i][~y[i]], 0)
        sig = torch.sigmoid(sim.detach()[i, p] - lneg)
        assert_close(sim.grad[i, p], -(1 - sig) / (sim.shape[0] * n), name="ds grad at positive")


def test_sampling_picks_one_positive_uniformly():
    y = torch.tensor([[True, False, True, True], [False, True, False, False]])
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(4)
    for _ in range(600):
        s = sample_one_positive(y, g)
        assert (s.sum(1) == 1).all() and not (s & ~y).any()
        counts += s[0].double().float()
    assert counts[1] == 0 and all(abs(c / 600 - 1 / 3) < 0.07 for c in counts[[0, 2, 3]].tolist())


def test_sampled_ds_masks_non_sampled_positives():
    sim, y = _case(seed=5)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    sampled = sample_one_positive(y, g2)
    expected = decoupled_softmax_loss(sim.masked_fill(y & ~sampled, MASK_VALUE), sampled)
    assert_close(decoupled_softmax_sampled_loss(sim, y, g1), expected, name="sampled ds")
    # equal to single-positive softmax over the labels that are not other positives (up to e^-100 terms)
    ref = (
        sum(
            -(sim[i, sampled[i]] - torch.logsumexp(sim[i][~(y[i] & ~sampled[i])], 0)).sum()
            for i in range(sim.shape[0])
        )
        / sim.shape[0]
    )
    assert_close(expected, ref, name="sampled ds vs restricted softmax")


def test_sampled_softmax_keeps_other_positives_in_the_denominator():
    """Official softmax + loss_sample: -(1/B) sum_i [s_{i,p_i} - log sum_{all l} e^{s_il}], p_i sampled."""
    sim, y = _case(seed=8)
    g1, g2, g3 = (torch.Generator().manual_seed(3) for _ in range(3))
    sampled = sample_one_positive(y, g2)
    ref = sum(sim[i, sampled[i]].sum() - torch.logsumexp(sim[i], 0) for i in range(sim.shape[0]))
    assert_close(softmax_sampled_loss(sim, y, g1), -ref / sim.shape[0], name="sampled softmax")
    # the same generator state samples the same positive as ds_sample (the two arms are paired), and
    # the only difference is that DS removes the other positives from the denominator
    assert_close(compute_loss("softmax_sample", sim, y, g3), -ref / sim.shape[0], name="compute_loss")
    assert bool((y.sum(1) > 1).any())  # the case has rows where the two losses differ
    ds = decoupled_softmax_sampled_loss(sim, y, torch.Generator().manual_seed(3))
    assert float(ds) < float(-ref / sim.shape[0])  # fewer terms in every denominator
    # one positive per row: identical to the multi-positive softmax
    y1 = torch.zeros_like(y)
    y1[torch.arange(y.shape[0]), y.float().argmax(1)] = True
    assert_close(softmax_sampled_loss(sim, y1), softmax_loss(sim, y1), name="1 positive")


def test_gradcheck():
    sim, y = _case(b=3, l=5, seed=6)
    for fn in (softmax_loss, bce_loss, decoupled_softmax_loss):
        check_gradients(lambda s, fn=fn: fn(s, y), sim)
    # the sampled losses with a re-seeded generator (the same positive at every evaluation)
    for fn in (softmax_sampled_loss, decoupled_softmax_sampled_loss):
        check_gradients(lambda s, fn=fn: fn(s, y, torch.Generator().manual_seed(1)), sim)


def test_errors():
    sim, y = _case()
    with pytest.raises(ValueError, match="bool"):
        softmax_loss(sim, y.float())
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        decoupled_softmax_loss(sim, y[:, :3])
    with pytest.raises(ValueError, match="loss must be one of"):
        compute_loss("topk", sim, y)
    y0 = y.clone()
    y0[0] = False
    with pytest.raises(ValueError, match="at least one positive"):
        sample_one_positive(y0)


def test_ds_row_without_positives_contributes_zero():
    # |P_i| is clamped to 1 so a row with no relevant label adds 0 (not 0/0 = nan); the sum is still / B
    g = torch.Generator().manual_seed(3)
    sim = torch.randn(2, 6, generator=g, dtype=torch.float64)
    targets = torch.zeros(2, 6, dtype=torch.bool)
    targets[0, [1, 4]] = True
    got = decoupled_softmax_loss(sim, targets)
    assert torch.isfinite(got)
    assert_close(got, decoupled_softmax_loss(sim[:1], targets[:1]) / 2)
