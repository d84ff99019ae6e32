"""Losses vs hand derivations and a literal re-enactment of the official pair bookkeeping; gradcheck."""

import math
from collections import Counter

import pytest
import torch
from metrix.losses import (
    Triples,
    all_pairs,
    ancneg_pairs,
    avg_nonzero,
    contrastive_loss,
    embed_metrix_loss,
    expand,
    mixed_pair_loss,
    posneg_triples,
)

from xentlab.testing import assert_close, check_gradients


def test_all_pairs_row_major():
    a1, p, a2, n = all_pairs(torch.tensor([0, 1, 0]))
    assert a1.tolist() == [0, 2] and p.tolist() == [2, 0]
    assert a2.tolist() == [0, 1, 1, 2] and n.tolist() == [1, 0, 2, 1]
    with pytest.raises(ValueError, match="1-d"):
        all_pairs(torch.zeros(2, 2))


def test_avg_nonzero():
    assert avg_nonzero(torch.tensor([0.0, 2.0, 4.0])).item() == 3.0  # zeros are not counted
    z = torch.zeros(3, requires_grad=True)
    out = avg_nonzero(z)
    out.backward()
    assert out.item() == 0.0 and z.grad is not None
    # weights act as multiplicities: [2, 4, 4] -> 10/3
    assert_close(avg_nonzero(torch.tensor([2.0, 4.0, 0.0]), torch.tensor([1, 2, 5])), torch.tensor(10 / 3))


def test_contrastive_hand_derivation():
    # e0=(1,0), e1=(0,2) (normalised to (0,1)), e2=(1,0); labels [0,0,1]
    # d(0,1)=sqrt2, d(0,2)=0, d(1,2)=sqrt2. positives (0,1),(1,0): relu(d-0) = sqrt2 each -> mean sqrt2.
    # negatives (0,2),(2,0): relu(0.5-0)=0.5; (1,2),(2,1): relu(0.5-sqrt2)=0 -> AvgNonZero = 0.5.
    e = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0]], dtype=torch.float64)
    loss = contrastive_loss(e, torch.tensor([0, 0, 1]))
    assert_close(loss, torch.tensor(math.sqrt(2) + 0.5, dtype=torch.float64))
    with pytest.raises(ValueError, match="N x D"):
        contrastive_loss(e, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="N x D"):  # N x 1 x D: right N, but distances need N x D
        contrastive_loss(e[:, None, :], torch.tensor([0, 0, 1]))


def _official_posneg(labels):
    """Literal re-enactment of embed_posneg_pair_mixup_for_pos_anchor's index bookkeeping."""
    a1, p, a2, n = all_pairs(labels)
    out = []
    for anchor in a1.tolist():
        idxs = torch.where(a2 == anchor)[0]
        first = p[torch.where(a1 == anchor)[0]][0].item()
        out += [(a2[i].item(), first, n[i].item()) for i in idxs]
    return out


def _official_ancneg(labels):
    """embed_neg_pair_mixup_without_posanchor: drop the negative pairs of every anchor that has a positive."""
    a1, _, a2, n = all_pairs(labels)
    return [(a, a, m) for a, m in zip(a2.tolist(), n.tolist()) if a not in set(a1.tolist())]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_triples_match_official_bookkeeping(seed):
    labels = torch.randint(0, 6, (14,), generator=torch.Generator().manual_seed(seed))
    t = expand(posneg_triples(labels))
    assert Counter(zip(t.a.tolist(), t.x.tolist(), t.n.tolist())) == Counter(_official_posneg(labels))
    u = ancneg_pairs(labels)
    assert sorted(zip(u.a.tolist(), u.x.tolist(), u.n.tolist())) == sorted(_official_ancneg(labels))
    # the weighted (deduplicated) loss equals the loss over the literal repeated list
    emb = torch.randn(14, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    w = embed_metrix_loss(emb, posneg_triples(labels), 0.3)
    assert_close(w, embed_metrix_loss(emb, t, 0.3))


def test_posneg_hand_derivation():
    # labels [0,0,1]; e0=(1,0), e1=(0,1), e2=(0,-1); lam = 0.75.
    # anchor 0: m = .75 e1 + .25 e2 = (0,.5) -> (0,1); d = sqrt2.
    # anchor 1: m = .75 e0 + .25 e2 = (.75,-.25) -> (3,-1)/sqrt10; d^2 = 9/10 + (1+1/sqrt10)^2 = 2 + 2/sqrt10.
    # pos terms .75 d (both > 0) -> mean; neg terms .25 relu(.5 - d) = 0 (d > 1) -> 0.
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    t = posneg_triples(torch.tensor([0, 0, 1]))
    assert t.a.tolist() == [0, 1] and t.x.tolist() == [1, 0] and t.n.tolist() == [2, 2]
    expected = 0.75 * (math.sqrt(2) + math.sqrt(2 + 2 / math.sqrt(10))) / 2
    assert_close(embed_metrix_loss(e, t, 0.75), torch.tensor(expected, dtype=torch.float64))


def test_ancneg_hand_derivation():
    # labels [0,0,1]: only anchor 2 lacks a positive; e2=(1,0), e0=(0,1), e1=(-1,0); lam = .75.
    # with e0: m = (.75,.25) -> (3,1)/sqrt10, d = sqrt(2 - 6/sqrt10); with e1: m = (.5,0) -> (1,0), d = 0.
    # pos: .75 d -> only the first is nonzero; neg: .25 relu(.5 - d) -> both nonzero, averaged.
    e = torch.tensor([[0.0, 1.0], [-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    t = ancneg_pairs(torch.tensor([0, 0, 1]))
    assert t.a.tolist() == [2, 2] and t.n.tolist() == [0, 1]
    d = math.sqrt(2 - 6 / math.sqrt(10))
    expected = 0.75 * d + 0.25 * ((0.5 - d) + 0.5) / 2
    assert_close(embed_metrix_loss(e, t, 0.75), torch.tensor(expected, dtype=torch.float64))


def test_empty_schemes_give_zero_with_graph():
    emb = torch.randn(4, 3, requires_grad=True)
    balanced = torch.tensor([0, 0, 1, 1])
    assert len(ancneg_pairs(balanced)) == 0  # every anchor has a positive: scheme (ii) is empty
    assert len(posneg_triples(torch.arange(4))) == 0  # no positives: scheme (i) is empty
    out = embed_metrix_loss(emb, ancneg_pairs(balanced), 0.5)
    out.backward()
    assert out.item() == 0.0


def test_gradients():
    labels = torch.tensor([0, 0, 1, 1, 2])
    emb = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    check_gradients(lambda e: contrastive_loss(e, labels), emb)
    t = posneg_triples(labels)
    check_gradients(lambda e: embed_metrix_loss(e, t, 0.4), emb)
    check_gradients(lambda d: mixed_pair_loss(d, 0.3), torch.tensor([0.2, 0.7, 1.1], dtype=torch.float64))


def test_triples_len():
    z = torch.zeros(0, dtype=torch.long)
    assert len(Triples(z, z, z, z)) == 0
