"""xentlab.metrics.segmentation: hand-derived values, a brute-force float64 reference, empty masks."""

import math
import sys

import numpy as np
import pytest
from scipy import ndimage

from xentlab.metrics.segmentation import asd, dice, hd95, jaccard, segmentation_metrics
from xentlab.optional_imports import import_monai


def _cube(shape, lo, hi):
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return m


def test_two_single_voxels_three_apart():
    # Each mask is one voxel, so each is its own surface; every distance is 3.
    a = _cube((10, 10, 10), (2, 2, 2), (3, 3, 3))
    b = _cube((10, 10, 10), (2, 2, 5), (3, 3, 6))
    m = segmentation_metrics(a, b)
    assert m == {"dice": 0.0, "jaccard": 0.0, "hd95": pytest.approx(3.0), "asd": pytest.approx(3.0)}


def test_cubes_shifted_by_two_hand_values():
    # P = [2,6)^3, G = P shifted by 2 along x. |P| = |G| = 64, |P∩G| = 2*4*4 = 32:
    # Dice = 64/128 = 1/2, Jaccard = 32/96 = 1/3.
    # P's surface (64 - 2^3 interior = 56 voxels) -> G's surface:
    #   x=2 face (16 voxels): distance 2;  x=3 ring (12): 1;  x=4 ring (12): 0 (on G's x=4 face);
    #   x=5 face (16): 12 lie on G's surface (0), the 4 with y,z in {3,4} are inside G (distance 1).
    # ASD = (16*2 + 12*1 + 4*1) / 56 = 48/56. Directed distances: 16 twos, 16 ones, 24 zeros; the
    # 95th percentile (numpy, linear) of 56 sorted values sits between entries 52 and 53, both 2;
    # by symmetry the other direction is the same, so HD95 = 2.
    p = _cube((12, 12, 12), (2, 2, 2), (6, 6, 6))
    g = _cube((12, 12, 12), (4, 2, 2), (8, 6, 6))
    assert dice(p, g) == pytest.approx(0.5)
    assert jaccard(p, g) == pytest.approx(1 / 3)
    assert hd95(p, g) == pytest.approx(2.0)
    assert asd(p, g) == pytest.approx(48 / 56)
    assert hd95(p, g, spacing=(0.5, 1.0, 1.0)) == pytest.approx(1.0)  # distances along x halve


def _surface(m):
    return m & ~ndimage.binary_erosion(m)


def _directed(x, y):
    xs, ys = np.argwhere(_surface(x)).astype(np.float64), np.argwhere(_surface(y)).astype(np.float64)
    return np.sqrt(((xs[:, None, :] - ys[None, :, :]) ** 2).sum(-1)).min(axis=1)


def test_against_brute_force_float64_reference():
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = ndimage.gaussian_filter(rng.random((16, 16, 16)), 2) > 0.5
        y = ndimage.gaussian_filter(rng.random((16, 16, 16)), 2) > 0.5
        d_xy, d_yx = _directed(x, y), _directed(y, x)
        inter = (x & y).sum()
        assert dice(x, y) == pytest.approx(2 * inter / (x.sum() + y.sum()), rel=1e-6)
        assert jaccard(x, y) == pytest.approx(inter / (x | y).sum(), rel=1e-6)
        assert hd95(x, y) == pytest.approx(max(np.percentile(d_xy, 95), np.percentile(d_yx, 95)), rel=1e-5)
        assert asd(x, y) == pytest.approx(d_xy.mean(), rel=1e-5)  # directed, as medpy's asd
        assert asd(x, y, symmetric=True) == pytest.approx(np.concatenate([d_xy, d_yx]).mean(), rel=1e-5)


def test_empty_masks_and_bad_input():
    empty = np.zeros((6, 6, 6), bool)
    full = _cube((6, 6, 6), (1, 1, 1), (4, 4, 4))
    assert segmentation_metrics(empty, empty) == {"dice": 1.0, "jaccard": 1.0, "hd95": 0.0, "asd": 0.0}
    m = segmentation_metrics(empty, full)
    assert m["dice"] == 0.0 and m["jaccard"] == 0.0 and math.isnan(m["hd95"]) and math.isnan(m["asd"])
    with pytest.raises(ValueError, match="shapes differ"):
        dice(full, full[:5])
    with pytest.raises(ValueError, match="binary"):
        dice(full * 0.5, full)
    with pytest.raises(ValueError, match="2D or 3D"):
        dice(np.zeros(5), np.zeros(5))


def test_import_monai_unblocks_skipped_modules():
    monai = import_monai()
    assert monai.__name__ == "monai"
    assert sys.modules.get("transformers", "absent") is not None  # never left marked as missing
