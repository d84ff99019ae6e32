"""The stand-in CLIP's training augmentation."""

import torch
from tfup.clip import augment


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
