"""Bottleneck ResNet: torchvision's ResNet-50 parameter count, shapes, stems, block wiring, errors."""

import pytest
import torch

from xentlab.models.resnet_bottleneck import Bottleneck, build_bottleneck_resnet


def _n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_resnet50_matches_torchvision_parameter_count():
    # torchvision.models.resnet50(num_classes=1000) has 25,557,032 parameters (its model card); the
    # layout here is the same, so the count must match exactly
    model = build_bottleneck_resnet(50, num_classes=1000)
    assert _n_params(model) == 25_557_032
    assert model.feature_dim == 2048
    # the small stem swaps the 7x7x3x64 conv (9,408 weights) for a 3x3x3x64 one (1,728); no other change
    small = build_bottleneck_resnet(50, num_classes=1000, stem="small")
    assert _n_params(small) == 25_557_032 - 9_408 + 1_728


def test_shapes_and_features():
    torch.manual_seed(0)
    model = build_bottleneck_resnet(50, in_channels=1, num_classes=10, stem="small", base_width=4).eval()
    x = torch.randn(2, 1, 28, 28)
    f, logits = model.forward_features(x)
    assert f.shape == (2, 4 * 8 * 4) and logits.shape == (2, 10)
    assert torch.allclose(model(x), logits) and torch.all(f >= 0)  # pooled post-ReLU features
    with pytest.raises(ValueError, match="expected N x 1"):
        model(torch.randn(2, 3, 28, 28))


def test_bottleneck_block_wiring():
    # a block with an identity shortcut and zeroed last BatchNorm is relu(x) on x >= 0 (residual only)
    block = Bottleneck(16, 4).eval()
    torch.nn.init.zeros_(block.bn3.weight)
    x = torch.rand(1, 16, 5, 5)
    assert torch.allclose(block(x), x)
    down = Bottleneck(16, 8, stride=2)
    assert down(torch.rand(2, 16, 8, 8)).shape == (2, 32, 4, 4)


def test_errors():
    with pytest.raises(ValueError, match="depth"):
        build_bottleneck_resnet(34)
    with pytest.raises(ValueError, match="stem"):
        build_bottleneck_resnet(50, stem="cifar")
