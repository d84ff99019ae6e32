"""xentlab.losses.plackett_luce against a float64 loop of the definition, the exact probability of
every ranking of three items, gradients."""

import itertools
import math

import torch

from xentlab.losses.plackett_luce import plackett_luce_log_probs


def test_matches_the_definition_term_by_term():
    g = torch.Generator().manual_seed(0)
    ranked = torch.randn(4, 6, generator=g, dtype=torch.float64) * 3
    got = plackett_luce_log_probs(ranked)
    for i in range(4):
        for k in range(6):
            want = ranked[i, k].item() - math.log(sum(math.exp(v) for v in ranked[i, k:].tolist()))
            assert abs(got[i, k].item() - want) < 1e-12
    assert torch.all(got[:, -1] == 0)  # the last item is picked with probability 1


def test_probabilities_of_all_rankings_sum_to_one():
    s = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    total = sum(
        plackett_luce_log_probs(s[list(p)]).sum().exp().item() for p in itertools.permutations(range(3))
    )
    assert abs(total - 1.0) < 1e-12


def test_gradients():
    x = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: plackett_luce_log_probs(t).sum(-1), (x,))
