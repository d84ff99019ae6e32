"""xentlab.data.augment: the official recipe's values, each switch at 0 / 1, the colour jitter's effect
on the mean luma (by hand), the hue rotation by hand and the crop staying inside the image
(mutation audit, session 12).  The module's luma and YIQ constants are float32 tensors, so float64
images are compared at 1e-6 (their rounding), far below the effects tested (>= 1e-3)."""

import dataclasses

import torch

from xentlab.data.augment import AugmentConfig, _hue_rotate, augment
from xentlab.testing import assert_close

LUMA = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)


def _luma(x):
    return (x * LUMA.view(1, 3, 1, 1)).sum(1)


def test_official_recipe_values():
    # G-SimCLR CustomAugment: flip p 0.5, colour jitter p 0.5 at strength s = 0.2, the colour drop a
    # no-op (grayscale_p 0), no crop, one draw per batch
    expected = {
        "crop_scale": None,
        "flip_p": 0.5,
        "jitter_p": 0.5,
        "jitter_strength": 0.2,
        "grayscale_p": 0.0,
        "per_batch": True,
    }
    assert dataclasses.asdict(AugmentConfig.official()) == expected


def test_switches_at_zero_and_one():
    x = torch.rand(6, 3, 5, 5, dtype=torch.float64)
    torch.manual_seed(0)
    off = AugmentConfig(flip_p=0.0, jitter_p=0.0, grayscale_p=0.0)
    assert torch.equal(augment(x, off), x)
    torch.manual_seed(0)
    flip = AugmentConfig(flip_p=1.0, jitter_p=0.0, grayscale_p=0.0)
    assert torch.equal(augment(x, flip), x.flip(-1))
    # greyscale: the ITU-R 601 luma in every channel
    torch.manual_seed(0)
    grey = augment(x, AugmentConfig(flip_p=0.0, jitter_p=0.0, grayscale_p=1.0))
    assert_close(grey, _luma(x)[:, None].expand_as(x), atol=1e-6, rtol=0)


def test_per_image_draws_differ_between_images():
    # per_batch=False: each image gets its own coin flip (32 images: both outcomes occur)
    x = torch.rand(32, 3, 4, 4)
    torch.manual_seed(0)
    y = augment(x, AugmentConfig(flip_p=0.5, jitter_p=0.0, per_batch=False))
    flipped = [torch.equal(y[i], x[i].flip(-1)) for i in range(32)]
    same = [torch.equal(y[i], x[i]) for i in range(32)]
    assert all(f or s for f, s in zip(flipped, same)) and any(flipped) and any(same)


def _luma_shift(x, cfg, seed):
    torch.manual_seed(seed)
    return _luma(augment(x, cfg)).mean((1, 2)) - _luma(x).mean((1, 2))


def test_jitter_shifts_the_mean_luma_by_the_brightness_delta_only():
    # Hand derivation: brightness adds delta to every channel (mean luma + delta); contrast blends
    # each channel with its own spatial mean (channel means, hence the mean luma, unchanged);
    # saturation blends with the luma image and the hue turns the (I, Q) plane of YIQ (luma
    # unchanged pixel by pixel). Near-grey inputs are never clipped, so every image's mean luma
    # moves by the same delta in a per-batch draw, and by its own delta in [-0.8 s, 0.8 s] per image.
    g = torch.Generator().manual_seed(0)
    x = 0.48 + 0.04 * torch.rand(16, 3, 6, 6, generator=g, dtype=torch.float64)
    cfg = AugmentConfig(flip_p=0.5, jitter_p=1.0, jitter_strength=0.5)
    for seed in range(3):
        shift = _luma_shift(x, cfg, seed)
        assert shift.abs().max() > 1e-3  # the jitter happened
        assert_close(shift, shift[:1].expand(16), atol=1e-6, rtol=0, name=f"seed {seed}")
    x = x.repeat(4, 1, 1, 1)
    shift = _luma_shift(x, AugmentConfig(flip_p=0.0, jitter_p=1.0, jitter_strength=0.5, per_batch=False), 0)
    assert shift.abs().max() <= 0.4 + 1e-6 and shift.min() < -0.2 and shift.max() > 0.2


def test_hue_rotation_by_hand():
    # a full turn is the identity; a half turn negates I and Q, so RGB = Y + M (I, Q) becomes
    # Y - (x - Y) = 2 luma - x, channel by channel
    x = torch.rand(3, 3, 4, 4, dtype=torch.float64)
    assert_close(_hue_rotate(x, torch.ones(3, dtype=torch.float64)), x, atol=1e-6, rtol=0)
    half = _hue_rotate(x, torch.full((3,), 0.5, dtype=torch.float64))
    assert_close(half, 2 * _luma(x)[:, None] - x, atol=1e-6, rtol=0)


def test_crop_stays_inside_the_image():
    # a ramp increasing along W and H: a crop inside the image, bilinearly resampled, is again
    # non-decreasing on both axes; a crop that crossed the border would be reflected back (not
    # monotone). 48 pixels, so that a crop 5% wider than the image reaches a pixel past the border.
    h = w = 48
    ramp = (
        torch.arange(w, dtype=torch.float64)[None, :] + 100 * torch.arange(h, dtype=torch.float64)[:, None]
    ) / 5000
    x = ramp.expand(64, 3, h, w).contiguous()
    for scale in ((0.1, 0.3), (0.9, 1.0)):
        torch.manual_seed(0)
        y = augment(x, AugmentConfig(crop_scale=scale, flip_p=0.0, jitter_p=0.0, per_batch=False))
        assert (y.diff(dim=-1) >= -1e-12).all() and (y.diff(dim=-2) >= -1e-12).all(), scale
        assert not torch.equal(y, x)


def test_jitter_turns_the_hue_by_up_to_a_fifth_of_s_turns():
    # On a constant image contrast does nothing (each channel is its own mean), brightness adds grey
    # and saturation scales the chroma (I, Q) of YIQ: only the hue rotation turns it, by 2 pi delta,
    # delta ~ U(-0.2 s, 0.2 s). Over 64 per-image draws the largest turn exceeds half the bound.
    s = 0.5
    yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
    )
    x = torch.tensor([0.55, 0.45, 0.5], dtype=torch.float64).view(1, 3, 1, 1).expand(64, 3, 2, 2).contiguous()
    torch.manual_seed(0)
    y = augment(x, AugmentConfig(flip_p=0.0, jitter_p=1.0, jitter_strength=s, per_batch=False))
    assert ((y > 0) & (y < 1)).all()  # nothing clipped
    iq_in = (yiq @ x[:, :, 0, 0].T)[1:]
    iq_out = (yiq @ y[:, :, 0, 0].T)[1:]
    turn = torch.atan2(iq_out[1], iq_out[0]) - torch.atan2(iq_in[1], iq_in[0])
    turn = (turn + torch.pi) % (2 * torch.pi) - torch.pi
    bound = 2 * torch.pi * 0.2 * s
    assert turn.abs().max() <= bound + 1e-5 and turn.abs().max() > bound / 2
