"""SimCLR augmentation (moved from gsimclr): per-batch vs per-image draws, seeding, range, identity, errors."""

import pytest
import torch

from xentlab.data.augment import AugmentConfig, augment
from xentlab.testing import assert_close


def test_augment_official_draws_once_per_batch():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 8, 8)
    for _ in range(5):
        y = augment(x, AugmentConfig.official())
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
        # one draw per batch: the per-image change is the same function of every image, so flipped-or-not agrees
        flipped = [torch.allclose(y[i], x[i].flip(-1)) for i in range(16)]
        same = [torch.allclose(y[i], x[i]) for i in range(16)]
        assert all(flipped) or all(same) or not any(flipped + same)


def test_augment_cpu_is_per_image_and_seeded():
    cfg = AugmentConfig(
        crop_scale=(0.3, 1.0), jitter_p=0.8, jitter_strength=0.5, grayscale_p=0.2, per_batch=False
    )
    x = torch.rand(32, 3, 16, 16)
    torch.manual_seed(1)
    a = augment(x, cfg)
    torch.manual_seed(1)
    assert torch.equal(a, augment(x, cfg))
    assert a.min() >= 0 and a.max() <= 1 and not torch.allclose(a, x)
    with pytest.raises(ValueError, match="N x 3"):
        augment(torch.rand(2, 1, 8, 8), cfg)


def test_identity_jitter_is_identity():
    # s = 0: brightness delta 0, contrast / saturation factor 1, hue rotation 0 -> the image is unchanged
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    cfg = AugmentConfig(flip_p=0.0, jitter_p=1.0, jitter_strength=0.0, grayscale_p=0.0)
    assert_close(augment(x, cfg), x, atol=1e-12)
