"""ProtoNet logits (-squared distance / T) and losses vs float64 hand computations, gradcheck, the margin behaviour and input errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from susana.losses import combined_loss, distances, episode_loss, proto_logits, proto_triplet_loss, prototypes

from xentlab.testing import assert_close, check_gradients

D64 = torch.float64


def _d(sq):  # the official distance: sqrt(||.||^2 + 1e-6)
    return math.sqrt(sq + 1e-6)


def test_prototypes_are_class_means():
    s = torch.tensor([[0.0, 0.0], [2.0, 4.0], [1.0, 1.0], [5.0, 5.0], [3.0, 3.0]], dtype=D64)
    y = torch.tensor([0, 0, 1, 2, 2])
    assert_close(prototypes(s, y, 3), torch.tensor([[1.0, 2.0], [1.0, 1.0], [4.0, 4.0]], dtype=D64))


def test_logits_are_minus_squared_distance_over_temperature():
    # tiny 2-way episode, hand-derived: support class 0 at (0,0), (2,0) -> c0 = (1,0);
    # class 1 at (0,2), (0,4) -> c1 = (0,3)
    s = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 4.0]], dtype=D64)
    ys = torch.tensor([0, 0, 1, 1])
    c = prototypes(s, ys, 2)
    q = torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=D64)
    # q0 = (1,1): ||q0 - c0||^2 = 0 + 1 = 1, ||q0 - c1||^2 = 1 + 4 = 5
    # q1 = (0,0): ||q1 - c0||^2 = 1,         ||q1 - c1||^2 = 9   (no epsilon, no square root)
    expected = -torch.tensor([[1.0, 5.0], [1.0, 9.0]], dtype=D64)
    assert_close(proto_logits(q, c), expected)
    assert_close(proto_logits(q, c, temperature=2.0), expected / 2)  # the author's -d^2 / T
    # CE of the episode with labels (0, 1), averaged over the two queries:
    # q0 label 0: -log(e^-1 / (e^-1 + e^-5)) = log(1 + e^-4)
    # q1 label 1: -log(e^-9 / (e^-1 + e^-9)) = log(e^-1 + e^-9) + 9
    ce = (math.log(1 + math.exp(-4)) + math.log(math.exp(-9) + math.exp(-1)) + 9) / 2
    loss, logits = episode_loss(s, ys, q, torch.tensor([0, 1]), 2)
    assert_close(logits, expected)
    assert_close(loss, torch.tensor(ce, dtype=D64))
    # gradient of a logit w.r.t. the query, by hand: d(-||q - c||^2 / T)/dq = -2 (q - c) / T
    qq = q.clone().requires_grad_(True)
    proto_logits(qq, c, temperature=2.0)[0, 1].backward()
    assert_close(qq.grad[0], -(q[0] - c[1]))  # -2 (q0 - c1) / 2
    assert torch.all(qq.grad[1] == 0)


def test_prediction_unchanged_by_temperature():
    g = torch.Generator().manual_seed(7)
    q, c = torch.randn(20, 4, generator=g, dtype=D64), torch.randn(5, 4, generator=g, dtype=D64)
    nearest = distances(q, c).argmin(1)
    for t in (0.1, 1.0, 64.0):
        assert torch.equal(proto_logits(q, c, temperature=t).argmax(1), nearest)


def test_proto_triplet_hand_values():
    # prototypes c0=(0,0), c1=(3,0), c2=(0,4)
    c = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], dtype=D64)
    q = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]], dtype=D64)
    y = torch.tensor([0, 0, 2])
    # q0: d+ = d(c0) = sqrt(1), d- = min(d(c1)=sqrt(4), d(c2)=sqrt(17)) -> 1 - 2 + 0.5 < 0 -> 0
    # q1: d+ = sqrt(4), d- = d(c1) = sqrt(1) -> 2 - 1 + 0.5 = 1.5
    # q2: d+ = d(c2) = sqrt(9), d- = min(d(c0)=sqrt(1), d(c1)=sqrt(10)) -> 3 - 1 + 0.5 = 2.5
    terms = [max(_d(1) - _d(4) + 0.5, 0), _d(4) - _d(1) + 0.5, _d(9) - _d(1) + 0.5]
    assert_close(proto_triplet_loss(q, y, c), torch.tensor(sum(terms) / 3, dtype=D64))
    # margin enters additively for active terms: margin 1.0 adds 0.5 to q1 and q2 and makes q0 active (1-2+1 ~ 0)
    terms1 = [max(_d(1) - _d(4) + 1.0, 0), _d(4) - _d(1) + 1.0, _d(9) - _d(1) + 1.0]
    assert_close(proto_triplet_loss(q, y, c, margin=1.0), torch.tensor(sum(terms1) / 3, dtype=D64))


def test_zero_when_every_query_clears_the_margin():
    c = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=D64)
    q = c + 0.1 * torch.randn(3, 2, dtype=D64, generator=torch.Generator().manual_seed(0))
    loss = proto_triplet_loss(q, torch.arange(3), c)
    assert loss.item() == 0.0
    q.requires_grad_(True)
    proto_triplet_loss(q, torch.arange(3), c).backward()
    assert torch.all(q.grad == 0)  # inactive hinge: no gradient


def test_hinge_active_just_inside_margin():
    # d+ = 1, d- = 1.4: gap 0.4 < 0.5 -> loss 0.1 (up to eps)
    c = torch.tensor([[0.0], [2.4]], dtype=D64)
    q = torch.tensor([[1.0]], dtype=D64)
    assert_close(proto_triplet_loss(q, torch.tensor([0]), c), torch.tensor(_d(1) - _d(1.96) + 0.5, dtype=D64))


def test_gradcheck():
    g = torch.Generator().manual_seed(1)
    q, c = torch.randn(6, 4, generator=g), torch.randn(3, 4, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    check_gradients(lambda a, b: proto_triplet_loss(a, y, b, margin=2.0), q, c)  # margin 2: hinges active
    check_gradients(lambda a, b: proto_logits(a, b), q, c)
    check_gradients(lambda a, b: proto_logits(a, b, temperature=3.0), q, c)
    ys, yq = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2, 0, 1, 2])
    check_gradients(lambda a, b: episode_loss(b, ys, a, yq, 3, triplet=True, margin=2.0)[0], q, c)


def test_episode_loss_averages_ce_and_triplet():
    g = torch.Generator().manual_seed(2)
    s, q = torch.randn(6, 3, generator=g, dtype=D64), torch.randn(4, 3, generator=g, dtype=D64)
    ys, yq = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 1, 2, 2])
    c = prototypes(s, ys, 3)
    ce = F.cross_entropy(-((q[:, None] - c[None]) ** 2).sum(-1), yq)  # CE on -squared distance (author's)
    tri = proto_triplet_loss(q, yq, c)
    assert_close(episode_loss(s, ys, q, yq, 3)[0], ce)
    ce_t = F.cross_entropy(-((q[:, None] - c[None]) ** 2).sum(-1) / 4.0, yq)
    assert_close(episode_loss(s, ys, q, yq, 3, temperature=4.0)[0], ce_t)
    assert_close(episode_loss(s, ys, q, yq, 3, triplet=True)[0], (ce + tri) / 2)
    assert_close(combined_loss(ce, [tri, tri]), (ce + 2 * tri) / 3)


def test_clear_errors():
    c = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="embedding sizes differ"):
        distances(torch.zeros(2, 3), c)
    with pytest.raises(ValueError, match="one label per query"):
        proto_triplet_loss(torch.zeros(2, 2), torch.tensor([0]), c)
    with pytest.raises(ValueError, match="labels must lie"):
        proto_triplet_loss(torch.zeros(1, 2), torch.tensor([3]), c)
    with pytest.raises(ValueError, match="at least two prototypes"):
        proto_triplet_loss(torch.zeros(1, 2), torch.tensor([0]), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        proto_logits(torch.zeros(1, 2), c, temperature=0.0)
    with pytest.raises(ValueError, match="needs a support sample"):
        prototypes(torch.zeros(2, 2), torch.tensor([0, 0]), 2)
