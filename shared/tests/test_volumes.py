"""xentlab.data.volumes: determinism, the degradations, the cache."""

import hashlib

import numpy as np
import pytest

from xentlab.data.volumes import VolumeSpec, _random_rotation, synthetic_volume, synthetic_volumes
from xentlab.testing.cache_keys import upgrade_library

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


def test_default_spec_keeps_the_first_release_volumes():
    # Values recorded with the first release of this module (before the ``shape`` field): a volume
    # of the default sphere path must not move (other packages rely on it). Its cache key does move
    # with the code (test_volume_key_follows_the_code).
    img, lab = synthetic_volume(1, seed=3, spec=SMALL)
    assert hashlib.sha1(lab.tobytes()).hexdigest() == "bfe22267c2d65e4537675e01b64c8b363c919088"
    assert float(img.astype(np.float64).sum()) == pytest.approx(79.02213905661938, rel=1e-6)
    assert VolumeSpec(shape="ellipsoid").key() != VolumeSpec().key()


def test_random_rotation_is_a_rotation():
    rs = np.random.RandomState(0)
    for _ in range(20):
        r = _random_rotation(rs)
        np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)


def test_ellipsoids_have_random_axes_and_orientations():
    # One clean labelled ellipsoid per volume: the label is the image support, its volume matches
    # 4/3 pi abc within the voxelisation error, and the second moments (principal axes from the
    # covariance of the voxel coordinates) are unequal and point in different directions per volume.
    clean = VolumeSpec(
        size=40,
        num_objs=1,
        rad_min=4,
        rad_max=14,
        bias_strength=0,
        blur_sigma=0,
        noise_std=0,
        shape="ellipsoid",
    )
    axes_dirs = []
    for i in range(4):
        img, lab = synthetic_volume(i, seed=0, spec=clean)
        assert np.array_equal(img > 0, lab.astype(bool)) and img.max() == pytest.approx(1.0)
        pts = np.argwhere(lab > 0).astype(np.float64)
        evals, evecs = np.linalg.eigh(np.cov(pts.T))
        semi = np.sqrt(5 * evals)  # a uniform solid ellipsoid has variance a^2 / 5 along axis a
        assert 4 - 1 < semi.min() and semi.max() < 14 + 1
        assert lab.sum() == pytest.approx(4 / 3 * np.pi * np.prod(semi), rel=0.1)
        assert semi.max() / semi.min() > 1.1  # not a sphere
        axes_dirs.append(evecs[:, -1])
    # the long axes of different volumes are not all aligned with one direction
    assert min(abs(axes_dirs[0] @ d) for d in axes_dirs[1:]) < 0.95
    # deterministic, and distractors never overwrite the labelled ellipsoid
    spec = VolumeSpec(size=32, num_objs=1, rad_min=4, rad_max=10, num_distractors=6, shape="ellipsoid")
    a, la = synthetic_volume(2, seed=5, spec=spec)
    b, lb = synthetic_volume(2, seed=5, spec=spec)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and la.any()
    with pytest.raises(ValueError, match="shape"):
        VolumeSpec(shape="cube")


def test_volume_key_follows_the_code(monkeypatch):
    # xentlab.data.cache, "The key rule": same code and spec, same key; an edit of this module or
    # another numpy / scipy / MONAI gives a new key (and a fresh build), so a stale file is never read.
    from xentlab.data import volumes
    from xentlab.data.cache import source_digest

    assert volumes.SOURCE_DIGEST == source_digest(volumes.__file__)
    volumes.code_version.cache_clear()
    before = SMALL.key()
    assert SMALL.key() == before and VolumeSpec(shape="sphere").key() == VolumeSpec().key()
    monkeypatch.setattr(volumes, "SOURCE_DIGEST", "0" * 16)  # as if the module's source had changed
    volumes.code_version.cache_clear()
    assert SMALL.key() != before
    monkeypatch.undo()
    upgrade_library(monkeypatch, "monai")
    volumes.code_version.cache_clear()
    assert SMALL.key() != before
    monkeypatch.undo()
    volumes.code_version.cache_clear()
    assert SMALL.key() == before
