"""xentlab.data.volumes: determinism, the degradations, the cache."""

import numpy as np
import pytest

from xentlab.data.volumes import VolumeSpec, synthetic_volume, synthetic_volumes

SMALL = VolumeSpec(size=20, num_objs=3, rad_min=2, rad_max=6, num_distractors=2)


def test_volume_is_deterministic_and_independent_of_the_set_size():
    img, lab = synthetic_volume(1, seed=3, spec=SMALL)
    img2, lab2 = synthetic_volume(1, seed=3, spec=SMALL)
    assert img.shape == lab.shape == (20, 20, 20) and img.dtype == np.float32 and lab.dtype == np.uint8
    assert np.array_equal(img, img2) and np.array_equal(lab, lab2)
    assert set(np.unique(lab)) <= {0, 1} and lab.any()
    other, _ = synthetic_volume(1, seed=4, spec=SMALL)
    assert not np.array_equal(img, other)
    few = synthetic_volumes(2, seed=3, spec=SMALL, cache=False)
    assert np.array_equal(few["images"][1], img)  # volume i depends only on (seed, i)


def test_no_degradation_gives_monai_spheres_exactly():
    # With every degradation off, the image is MONAI's rescaled spheres: background 0, labelled
    # spheres in [0.5, 1] / max, and the label is exactly the support of the image.
    clean = VolumeSpec(size=20, num_objs=3, rad_min=2, rad_max=6, bias_strength=0, blur_sigma=0, noise_std=0)
    img, lab = synthetic_volume(0, seed=0, spec=clean)
    assert np.array_equal(img > 0, lab.astype(bool))
    assert img.max() == pytest.approx(1.0) and img[lab > 0].min() >= 0.5 - 1e-6


def _best_threshold_dice(spec):
    img, lab = synthetic_volume(0, seed=0, spec=spec)
    fg = lab > 0
    cuts = np.quantile(img, np.linspace(0.5, 0.99, 60))
    return max(2 * (fg & (img > t)).sum() / (fg.sum() + (img > t).sum()) for t in cuts)


def test_degradations_make_the_threshold_task_hard():
    # Clean spheres are segmented perfectly by one global threshold; noise + bias + blur (and
    # distractors even more) leave the best global threshold far from perfect.
    clean = VolumeSpec(size=24, rad_max=8, bias_strength=0, blur_sigma=0, noise_std=0)
    assert _best_threshold_dice(clean) == pytest.approx(1.0)
    assert _best_threshold_dice(VolumeSpec(size=24, rad_max=8)) < 0.92
    assert _best_threshold_dice(VolumeSpec(size=24, rad_max=8, num_distractors=6)) < 0.85


def test_cache_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path))
    a = synthetic_volumes(2, seed=0, spec=SMALL)
    files = list(tmp_path.glob("volumes3d-*.npz"))
    assert len(files) == 1 and SMALL.key() in files[0].name
    b = synthetic_volumes(2, seed=0, spec=SMALL)  # read back from the cache
    assert np.array_equal(a["images"], b["images"]) and np.array_equal(a["labels"], b["labels"])


def test_spec_validation():
    with pytest.raises(ValueError, match="rad_min"):
        VolumeSpec(rad_min=5, rad_max=5)
    with pytest.raises(ValueError, match="size"):
        VolumeSpec(size=20, rad_max=10)
    with pytest.raises(ValueError, match="jitter"):
        VolumeSpec(jitter=1.5)
    with pytest.raises(ValueError, match="n must be"):
        synthetic_volumes(0)
    assert VolumeSpec().key() == VolumeSpec().key() != VolumeSpec(noise_std=0.2).key()
