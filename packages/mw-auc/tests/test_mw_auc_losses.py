"""MW loss (Eq. 3, both pairings) and InfoNCE (Eq. 4): float64 loop references, the AoC bound of
Lemma 2, Lemma 1's shift invariance, gradcheck, and clear errors."""

import math

import pytest
import torch
from mw_auc.losses import compute_loss, info_nce_loss, mw_loss, pairwise_aoc

from xentlab.testing import assert_close, check_gradients


def random_batch(b=6, h=1, seed=0, scale=3.0, dup=True):
    """A (B, B(1+H)) score matrix in the Sec. 4 layout: column i is query i's positive, then hard negatives.
    With ``dup`` a hard-negative column is a copy of another query's positive (masked for that query)."""
    g = torch.Generator().manual_seed(seed)
    n = b * (1 + h)
    scores = scale * torch.randn(b, n, generator=g, dtype=torch.float64)
    doc = torch.arange(n)
    if dup:
        doc[b] = 1  # the first hard negative is the same document as query 1's positive
    pos_index = torch.arange(b)
    neg_mask = doc[None, :] != doc[pos_index][:, None]
    return scores, pos_index, neg_mask


def loop_references(scores, pos_index, neg_mask):
    """Eq. (3) and Eq. (4) written out with Python loops, float64."""
    b, n = scores.shape
    pos = [float(scores[i, pos_index[i]]) for i in range(b)]
    rows = [[float(scores[i, c]) for c in range(n) if neg_mask[i, c]] for i in range(b)]
    pooled = [s for r in rows for s in r]  # S^- = union_i S_i^- (a multiset)

    def nlsig(x):  # -log sigma(x)
        return math.log1p(math.exp(-x))

    mw_global = sum(nlsig(pos[i] - s) for i in range(b) for s in pooled) / b
    mw_query = sum(nlsig(pos[i] - s) for i in range(b) for s in rows[i]) / b
    nce = sum(-pos[i] + math.log(math.exp(pos[i]) + sum(math.exp(s) for s in rows[i])) for i in range(b)) / b
    n_global, n_query = b * len(pooled), sum(len(r) for r in rows)
    return mw_global, mw_query, nce, n_global, n_query


@pytest.mark.parametrize("seed,h", [(0, 1), (1, 0), (2, 3)])
def test_losses_match_loop_references(seed, h):
    scores, pos_index, neg_mask = random_batch(b=5, h=h, seed=seed, dup=h > 0)
    mw_g, mw_q, nce, n_g, n_q = loop_references(scores, pos_index, neg_mask)
    assert_close(
        mw_loss(scores, pos_index, neg_mask, pairing="global"), torch.tensor(mw_g, dtype=torch.float64)
    )
    assert_close(
        mw_loss(scores, pos_index, neg_mask, pairing="per_query"), torch.tensor(mw_q, dtype=torch.float64)
    )
    assert_close(info_nce_loss(scores, pos_index, neg_mask), torch.tensor(nce, dtype=torch.float64))
    # reduction="mean" is Eq. (3) divided by the number of compared pairs per query: (1/B) sum -> mean
    b = scores.shape[0]
    assert_close(
        mw_loss(scores, pos_index, neg_mask, reduction="mean"),
        torch.tensor(mw_g * b / n_g, dtype=torch.float64),
    )
    assert_close(
        mw_loss(scores, pos_index, neg_mask, pairing="per_query", reduction="mean"),
        torch.tensor(mw_q * b / n_q, dtype=torch.float64),
    )
    assert compute_loss("mw_global", scores, pos_index, neg_mask) == mw_loss(scores, pos_index, neg_mask)


@pytest.mark.parametrize("pairing", ["global", "per_query"])
@pytest.mark.parametrize("seed", range(8))
def test_aoc_is_bounded_by_mw_over_ln2(pairing, seed):
    """Lemma 2: AoC <= L_MW / ln 2, for the mean-reduced loss over the same pairs.

    Derivation: for one pair let z = s^+ - s^- (temperature already in the scores). If z <= 0 then
    e^{-z} >= 1, so log(1 + e^{-z}) >= log 2, i.e. 1{z <= 0} <= log(1 + e^{-z}) / ln 2; if z > 0 the
    left side is 0 and the right side is positive. Averaging this pointwise inequality over the pairs
    gives AoC = mean 1{z <= 0} <= mean softplus(-z) / ln 2 = L_MW(mean) / ln 2. It holds for any scale,
    so it is checked on small, large and tied scores.
    """
    for scale in (0.01, 1.0, 30.0):
        scores, pos_index, neg_mask = random_batch(b=7, h=2, seed=seed, scale=scale)
        if seed % 4 == 0:  # ties count as errors in Lemma 2's 1{z <= 0}
            scores = scores.round()
        aoc = pairwise_aoc(scores, pos_index, neg_mask, pairing=pairing)
        bound = mw_loss(scores, pos_index, neg_mask, pairing=pairing, reduction="mean") / math.log(2)
        assert 0.0 <= aoc <= bound + 1e-12, (scale, float(aoc), float(bound))


def test_bound_is_tight_only_at_zero_margin():
    # all scores equal: every pair is a tie, AoC = 1 and softplus(0)/ln 2 = 1 exactly
    scores = torch.zeros(4, 8, dtype=torch.float64)
    pos_index, neg_mask = torch.arange(4), torch.ones(4, 8, dtype=torch.bool)
    neg_mask[torch.arange(4), torch.arange(4)] = False
    assert float(pairwise_aoc(scores, pos_index, neg_mask)) == 1.0
    assert_close(
        mw_loss(scores, pos_index, neg_mask, reduction="mean") / math.log(2), torch.tensor(1.0).double()
    )


def test_shift_invariance_lemma1():
    """Lemma 1: adding g(q) to a query's scores leaves InfoNCE (and per-query MW) unchanged; MW with
    global pairing compares across queries, so it sees the shift (the paper's point)."""
    scores, pos_index, neg_mask = random_batch(b=6, h=1, seed=3)
    g = torch.linspace(-4, 4, 6, dtype=torch.float64)[:, None]
    shifted = scores + g
    assert_close(info_nce_loss(shifted, pos_index, neg_mask), info_nce_loss(scores, pos_index, neg_mask))
    assert_close(
        mw_loss(shifted, pos_index, neg_mask, pairing="per_query"),
        mw_loss(scores, pos_index, neg_mask, pairing="per_query"),
    )
    assert abs(float(mw_loss(shifted, pos_index, neg_mask) - mw_loss(scores, pos_index, neg_mask))) > 1e-3


@pytest.mark.parametrize("name", ["infonce", "mw_global", "mw_per_query"])
def test_gradcheck(name):
    scores, pos_index, neg_mask = random_batch(b=4, h=1, seed=5, scale=1.0)
    assert check_gradients(lambda s: compute_loss(name, s, pos_index, neg_mask), scores)


def test_masked_duplicate_is_not_a_negative():
    # query 1's positive also sits in a hard-negative column: it must not push query 1 away from it
    scores, pos_index, neg_mask = random_batch(b=4, h=1, seed=7)
    assert not neg_mask[1, 4] and neg_mask[0, 4]
    s = scores.clone().requires_grad_(True)
    mw_loss(s, pos_index, neg_mask, pairing="per_query").backward()
    assert s.grad[1, 4] == 0 and s.grad[0, 4] > 0


def test_clear_errors():
    scores, pos_index, neg_mask = random_batch(b=4, h=1, seed=0, dup=False)
    with pytest.raises(ValueError, match="pairing"):
        mw_loss(scores, pos_index, neg_mask, pairing="row")
    with pytest.raises(ValueError, match="reduction"):
        mw_loss(scores, pos_index, neg_mask, reduction="sum")
    with pytest.raises(ValueError, match="positive column"):
        mw_loss(scores, pos_index, torch.ones_like(neg_mask))
    with pytest.raises(ValueError, match="out of range"):
        info_nce_loss(scores, pos_index + 100, neg_mask)
    with pytest.raises(ValueError, match="bool"):
        info_nce_loss(scores, pos_index, neg_mask.float())
    with pytest.raises(ValueError, match="no negatives"):
        mw_loss(scores, pos_index, torch.zeros_like(neg_mask))
    with pytest.raises(ValueError, match="unknown loss"):
        compute_loss("bce", scores, pos_index, neg_mask)


def test_pairwise_aoc_by_hand_with_a_tie():
    # B = 2, N = 4. Query 0: s+ = 1 (col 0), negatives cols 1, 2 = (2, 1); query 1: s+ = 3 (col 1),
    # negatives cols 0, 3 = (0, 5). Lemma 2 counts a tie (s+ = s-) as an error.
    # per_query: errors 2 >= 1, 1 >= 1 (query 0) and 5 >= 3 (query 1): 3 of 4 pairs.
    # global (the default): S^- = {2, 1, 0, 5}; s+ = 1 loses to 2, 1, 5 and s+ = 3 to 5: 4 of 8 pairs.
    scores = torch.tensor([[1.0, 2.0, 1.0, 0.0], [0.0, 3.0, 0.0, 5.0]], dtype=torch.float64)
    pos_index = torch.tensor([0, 1])
    neg_mask = torch.tensor([[False, True, True, False], [True, False, False, True]])
    assert float(pairwise_aoc(scores, pos_index, neg_mask, pairing="per_query")) == 0.75
    assert float(pairwise_aoc(scores, pos_index, neg_mask)) == 0.5
    with pytest.raises(ValueError, match="pairing"):
        pairwise_aoc(scores, pos_index, neg_mask, pairing="row")


def test_compute_loss_dispatches_each_arm():
    scores, pos_index, neg_mask = random_batch(b=4, h=1, seed=8)
    for name, expected in (
        ("infonce", info_nce_loss(scores, pos_index, neg_mask)),
        ("mw_global", mw_loss(scores, pos_index, neg_mask, pairing="global")),
        ("mw_per_query", mw_loss(scores, pos_index, neg_mask, pairing="per_query")),
    ):
        assert_close(compute_loss(name, scores, pos_index, neg_mask), expected, atol=0, rtol=0)
    # the two MW arms differ on this batch, so the check above can tell them apart
    assert abs(float(compute_loss("mw_global", scores, pos_index, neg_mask)
                     - compute_loss("mw_per_query", scores, pos_index, neg_mask))) > 1e-3  # fmt: skip


def test_clear_errors_for_shapes():
    scores, pos_index, neg_mask = random_batch(b=4, h=1, seed=0, dup=False)
    for bad in (scores[None], scores[0]):  # (1, B, N) and (N,) are not a (B, N) score matrix
        with pytest.raises(ValueError, match="scores must be"):
            mw_loss(bad, pos_index, neg_mask)
    with pytest.raises(ValueError, match="pos_index must be"):
        mw_loss(scores, pos_index[:, None], neg_mask)
