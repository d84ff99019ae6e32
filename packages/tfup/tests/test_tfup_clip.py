"""The stand-in CLIP's training augmentation, learning-rate schedule and cache key."""

import math

import pytest
import tfup.clip
import torch
from tfup.clip import ClipConfig, augment, clip_lr

from xentlab.train.schedules import warmup_cosine_lr


def test_augment_identity_when_off():
    x = torch.rand(5, 3, 12, 12)
    assert torch.equal(augment(x, 0, 0.0, torch.Generator().manual_seed(0)), x)


def test_augment_deterministic_and_in_range():
    x = torch.rand(6, 3, 12, 12)
    a = augment(x, 2, 0.3, torch.Generator().manual_seed(3))
    b = augment(x, 2, 0.3, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1


def test_augment_shift_is_a_translation_without_flip():
    # a single bright pixel moves by at most `shift` in each axis and stays one pixel (no flip / rescale)
    x = torch.zeros(8, 1, 9, 9)
    x[:, :, 4, 2] = 1.0
    y = augment(x, 2, 0.0, torch.Generator().manual_seed(0))
    for img in y:
        r, c = torch.nonzero(img[0] == 1.0).squeeze(0).tolist()
        assert abs(r - 4) <= 2 and abs(c - 2) <= 2 and img.sum() == 1.0


def test_augment_photometric_keeps_constant_images_constant():
    # brightness x contrast of a constant image: contrast leaves it (x - mean = 0), brightness scales it
    x = torch.full((4, 3, 6, 6), 0.4)
    y = augment(x, 0, 0.3, torch.Generator().manual_seed(1))
    per_img = y.flatten(1)
    assert torch.allclose(per_img, per_img[:, :1].expand_as(per_img))
    assert ((per_img[:, 0] >= 0.4 * 0.7 - 1e-6) & (per_img[:, 0] <= 0.4 * 1.3 + 1e-6)).all()


def test_clip_lr_is_the_shared_schedule_with_the_same_warmup_and_peak():
    # CODE_VERSION 3: the stand-in's rate is xentlab.train.schedules.warmup_cosine_lr; the warm-up length
    # (warmup_steps, passed as a fraction of steps) and the peak lr are those of the config
    for steps, warm in ((2500, 200), (20, 5), (1500, 50), (7, 3)):
        cfg = ClipConfig(steps=steps, warmup_steps=warm, lr=2e-3)
        rates = [clip_lr(cfg, s) for s in range(steps)]
        # ramp (s + 1) / warm * lr, peak reached at the last warm-up step, then strictly below the peak
        assert rates[:warm] == pytest.approx([2e-3 * (s + 1) / warm for s in range(warm)], rel=1e-12)
        assert max(rates) == pytest.approx(2e-3, rel=1e-12) and rates[warm] == pytest.approx(2e-3, rel=1e-12)
        assert all(r < 2e-3 for r in rates[warm + 1 :])
        # half-cosine over the steps after warm-up, ending at final_lr_frac = 0
        p = (steps - 1 - warm) / (steps - warm)
        assert rates[-1] == pytest.approx(2e-3 * 0.5 * (1 + math.cos(math.pi * p)), rel=1e-12)
        assert rates == [
            warmup_cosine_lr(s, steps, lr=2e-3, warmup=warm / steps, final_lr_frac=0.0) for s in range(steps)
        ]


def test_cache_key_carries_the_code_version(monkeypatch):
    # a change of the training code must give a new key, so a stale model is never loaded
    # (xentlab.data.cache, "The key rule"; more in test_tfup_cache_key.py)
    cfg = ClipConfig()
    key = cfg.key()
    assert key == ClipConfig().key() and key != ClipConfig(steps=2501).key()
    monkeypatch.setattr(tfup.clip, "SOURCE_DIGEST", "0" * 16)
    tfup.clip.code_version.cache_clear()
    assert cfg.key() != key
    monkeypatch.undo()
    tfup.clip.code_version.cache_clear()
    assert cfg.key() == key
