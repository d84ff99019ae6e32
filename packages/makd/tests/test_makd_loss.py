import math

import pytest
import torch
import torch.nn.functional as F
from makd.loss import ALPHA, CE_WEIGHT, makd_loss, split_logits, widen_head

from xentlab.models.cnn import build_cnn
from xentlab.testing import assert_close, check_gradients


def test_hand_computation_float64():
    # one image, C = 2, Q = 2; logits [0, ln 3 | 0, ln 4], y = 1, t = [0.5, 1.0]
    # CE = -log softmax([0, ln3])[1] = -log(3/4)
    # BCE(z, t) = softplus(z) - t z:  z=0,t=.5 -> ln 2;  z=ln4,t=1 -> ln5 - ln4 = ln(5/4); mean over Q
    logits = torch.tensor([[0.0, math.log(3), 0.0, math.log(4)]], dtype=torch.float64)
    t = torch.tensor([[0.5, 1.0]], dtype=torch.float64)
    expected = -math.log(3 / 4) + ALPHA * 0.5 * (math.log(2) + math.log(5 / 4))
    loss = makd_loss(logits, torch.tensor([1]), t, num_classes=2)
    assert loss.dtype == torch.float64
    assert_close(loss, torch.tensor(expected, dtype=torch.float64), name="makd loss")


def test_official_defaults():
    assert ALPHA == 4.0  # configs/fine_grained/makd.yaml
    assert CE_WEIGHT == 1.0  # configs/fine_grained/makd.yaml


def test_alpha_zero_is_ce():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 7 + 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 7, (5,), generator=g)
    t = torch.rand(5, 3, generator=g, dtype=torch.float64)
    assert_close(makd_loss(logits, y, t, 7, alpha=0.0), F.cross_entropy(logits[:, :7], y))


def test_bce_mean_over_all_entries():
    # the aspect term is the mean over N x Q (reduction='mean'), computed here by hand
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 3 + 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (4,), generator=g)
    t = torch.rand(4, 5, generator=g, dtype=torch.float64)
    z = logits[:, 3:]
    bce = (torch.log1p(torch.exp(z)) - t * z).mean()
    assert_close(makd_loss(logits, y, t, 3, alpha=2.5, ce_weight=0.5),
                 0.5 * F.cross_entropy(logits[:, :3], y) + 2.5 * bce)  # fmt: skip


def test_gradcheck():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 4 + 2, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 3, 1])
    t = torch.rand(3, 2, generator=g, dtype=torch.float64)
    check_gradients(lambda s: makd_loss(s, y, t, 4), logits)


def test_clear_errors():
    s, y = torch.zeros(2, 5), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="C \\+ Q"):
        makd_loss(s, y, torch.zeros(2, 3), num_classes=3)  # 3 + 3 != 5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        makd_loss(s, y, torch.full((2, 2), 1.5), num_classes=3)
    with pytest.raises(ValueError, match="N x Q"):
        makd_loss(s, y, torch.zeros(3, 2), num_classes=3)
    with pytest.raises(ValueError, match="C \\+ Q"):
        split_logits(torch.zeros(2, 4), 3, 2)


def test_widen_head():
    m = build_cnn(3, 10, (4, 8))
    widen_head(m, 10, 6)
    assert m(torch.zeros(2, 3, 16, 16)).shape == (2, 16)
    with pytest.raises(ValueError, match="expected C"):
        widen_head(build_cnn(3, 10, (4,)), 9, 2)


def test_more_clear_errors():
    s, y = torch.zeros(2, 5), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        makd_loss(s, y, torch.full((2, 2), -0.5), num_classes=3)  # below 0 is no probability either
    with pytest.raises(ValueError, match="target must have shape"):
        makd_loss(s, torch.tensor([[0], [1]]), torch.zeros(2, 2), num_classes=3)
    with pytest.raises(ValueError, match="C \\+ Q"):
        split_logits(torch.zeros(2, 1, 5), 3, 2)  # N x (C + Q) only, not a sequence of logits


def test_widen_head_keeps_bias_setting_and_rejects_bad_heads():
    m = build_cnn(3, 10, (4,))
    m.head = torch.nn.Linear(m.head.in_features, 10, bias=False)
    assert widen_head(m, 10, 2).head.bias is None  # same head kind, only wider
    assert widen_head(build_cnn(3, 10, (4,)), 10, 2).head.bias is not None
    with pytest.raises(ValueError, match="num_aspects"):
        widen_head(build_cnn(3, 10, (4,)), 10, 0)
    m2 = build_cnn(3, 10, (4,))
    m2.head = torch.nn.Sequential(torch.nn.Linear(m2.head.in_features, 10))
    with pytest.raises(TypeError, match="nn.Linear"):
        widen_head(m2, 10, 2)
