"""xentlab.models.cnn: shapes, features + logits, depth rules, gradients flow, clear errors."""

import pytest
import torch

from xentlab.models.cnn import build_cnn, build_resnet, count_parameters


def test_cnn_features_and_logits():
    m = build_cnn(3, 7, (8, 16))
    x = torch.randn(5, 3, 24, 24)
    f, z = m.forward_features(x)
    assert f.shape == (5, 16) and z.shape == (5, 7) and m.feature_dim == 16
    assert (f >= 0).all()  # pooled post-ReLU features
    m.eval()
    assert torch.allclose(m(x), m.head(m.features(x)))


def test_cnn_odd_sizes_and_errors():
    m = build_cnn(1, 10, (4, 8, 8))
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 10)  # 8 -> 4 -> 2 -> 1 with ceil-mode pooling
    with pytest.raises(ValueError, match="input"):
        m(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError):
        build_cnn(1, 10, ())


def test_resnet_depths():
    r20 = build_resnet(20, in_channels=3, num_classes=100)
    f, z = r20.forward_features(torch.randn(2, 3, 32, 32))
    assert f.shape == (2, 64) and z.shape == (2, 100)
    # ResNet-20 has ~0.27M parameters (He et al. 2016, Table 6), plus the 100-way head
    assert 0.26e6 < count_parameters(r20) - 64 * 100 - 100 + 64 * 10 + 10 < 0.29e6
    r56 = build_resnet(56)
    assert sum(len(s) for s in r56.stages) == 27
    r18 = build_resnet(18, in_channels=3, num_classes=10)
    assert r18.feature_dim == 512 and r18(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert build_resnet(18, stem="imagenet")(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    with pytest.raises(ValueError, match="6n\\+2"):
        build_resnet(21)


def test_gradients_reach_the_first_layer():
    m = build_resnet(8, in_channels=1, num_classes=3, width=4)
    loss = m(torch.randn(4, 1, 16, 16)).logsumexp(1).mean()
    loss.backward()
    assert m.stem[0].weight.grad is not None and m.stem[0].weight.grad.abs().sum() > 0


def test_seeded_construction_is_deterministic():
    torch.manual_seed(0)
    a = build_cnn(1, 10)
    torch.manual_seed(0)
    b = build_cnn(1, 10)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
