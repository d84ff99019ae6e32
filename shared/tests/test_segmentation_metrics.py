"""xentlab.metrics.segmentation: hand-derived values, a brute-force float64 reference, a transcription of
medpy's HD95 / ASD (the official evaluation of UA-MT and TraCoCo), empty masks."""

import math
import sys

import numpy as np
import pytest
from scipy import ndimage
from scipy.ndimage import binary_erosion, distance_transform_edt, generate_binary_structure

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


def test_segmentation_metrics_pass_the_spacing_to_both_distances():
    # the shifted cubes above with voxels half as long along x: every distance halves (they all run
    # along x), so HD95 = 1 and ASD = 24/56; Dice and Jaccard do not depend on the spacing
    p = _cube((12, 12, 12), (2, 2, 2), (6, 6, 6))
    g = _cube((12, 12, 12), (4, 2, 2), (8, 6, 6))
    m = segmentation_metrics(p, g, spacing=(0.5, 1.0, 1.0))
    assert m == {
        "dice": pytest.approx(0.5),
        "jaccard": pytest.approx(1 / 3),
        "hd95": pytest.approx(1.0),
        "asd": pytest.approx(24 / 56),
    }
    # ASD is directed (pred -> gt, medpy's asd) in the dict too: a cube inside a longer box is
    # close to the box's surface, but the box's far end is not close to the cube
    y = _cube((12, 12, 12), (2, 2, 2), (9, 6, 6))
    d_py, d_yp = _directed(p, y), _directed(y, p)
    assert d_py.mean() < 0.8 * np.concatenate([d_py, d_yp]).mean()
    assert segmentation_metrics(p, y)["asd"] == pytest.approx(d_py.mean(), rel=1e-6)


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
        assert hd95(x, y) == pytest.approx(np.percentile(np.concatenate([d_xy, d_yx]), 95), rel=1e-5)
        want_max = max(np.percentile(d_xy, 95), np.percentile(d_yx, 95))
        assert hd95(x, y, pooled=False) == pytest.approx(want_max, rel=1e-5)
        assert asd(x, y) == pytest.approx(d_xy.mean(), rel=1e-5)  # directed, as medpy's asd
        assert asd(x, y, symmetric=True) == pytest.approx(np.concatenate([d_xy, d_yx]).mean(), rel=1e-5)


def _medpy_surface_distances(result, reference, spacing=None):
    """A float64 transcription of medpy's ``__surface_distances`` (connectivity 1): surface = mask XOR
    one erosion with the 6-connected cross (border value 0), distances by the Euclidean distance transform."""
    result, reference = np.asarray(result, bool), np.asarray(reference, bool)
    footprint = generate_binary_structure(result.ndim, 1)
    result_border = result ^ binary_erosion(result, structure=footprint, iterations=1)
    reference_border = reference ^ binary_erosion(reference, structure=footprint, iterations=1)
    return distance_transform_edt(~reference_border, sampling=spacing)[result_border]


def _medpy_hd95(result, reference, spacing=None):
    pooled = np.hstack(
        (
            _medpy_surface_distances(result, reference, spacing),
            _medpy_surface_distances(reference, result, spacing),
        )
    )
    return float(np.percentile(pooled, 95))


def _line(n, idx):
    """A (1, 1, n) volume with foreground at ``idx``: every foreground voxel is a surface voxel
    (its x and y neighbours lie outside the volume, where the erosion's border value is 0)."""
    v = np.zeros((1, 1, n), bool)
    v[0, 0, list(idx)] = True
    return v


def test_hd95_pooled_and_directed_by_hand():
    # gt = z 0..9, pred = the same plus one stray voxel at z 20 (11 from gt's end at z 9).
    # pred -> gt: ten 0s and one 11; gt -> pred: ten 0s. Pooled (21 values, twenty 0s): rank 0.95 * 20 = 19
    # -> 0. Directed pred -> gt: rank 0.95 * 10 = 9.5 -> (0 + 11) / 2 = 5.5, the max of the two.
    gt, pred = _line(32, range(10)), _line(32, [*range(10), 20])
    assert hd95(pred, gt) == pytest.approx(0.0, abs=1e-12) and hd95(gt, pred) == pytest.approx(0.0, abs=1e-12)
    assert hd95(pred, gt, pooled=False) == pytest.approx(5.5, abs=1e-5)
    # gt = z 0, pred = z 0..9: pred -> gt 0..9, gt -> pred 0. Pooled [0, 0, 1, ..., 9]: rank 9.5 -> 8.5;
    # directed: rank 0.95 * 9 = 8.55 -> 8.55. Spacing 2 along z doubles every distance.
    gt, pred = _line(16, [0]), _line(16, range(10))
    assert hd95(pred, gt) == pytest.approx(8.5, abs=1e-6)
    assert hd95(pred, gt, pooled=False) == pytest.approx(8.55, abs=1e-5)
    assert hd95(pred, gt, spacing=(1.0, 1.0, 2.0)) == pytest.approx(17.0, abs=1e-5)


def _blobs(rng, shape, n):
    """Random unions of axis-aligned ellipsoids: irregular, asymmetric surfaces, some at the border."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).astype(float)
    mask = np.zeros(shape, bool)
    for _ in range(n):
        c = rng.uniform(0, np.array(shape))
        r = rng.uniform(2, 7, size=3)
        mask |= (((grid - c) / r) ** 2).sum(-1) <= 1
    return mask


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spacing", [None, (1.0, 1.5, 2.5)])
def test_hd95_and_asd_match_the_medpy_transcription(seed, spacing):
    rng = np.random.default_rng(seed)
    gt = _blobs(rng, (24, 20, 28), 2)
    pred = _blobs(rng, (24, 20, 28), 3) | np.roll(gt, rng.integers(-2, 3), axis=int(rng.integers(3)))
    # MONAI's distances are float32: 1e-6 relative
    assert hd95(pred, gt, spacing) == pytest.approx(_medpy_hd95(pred, gt, spacing), rel=1e-6)
    medpy_asd = float(_medpy_surface_distances(pred, gt, spacing).mean())  # medpy.asd(pred, gt): directed
    assert asd(pred, gt, spacing) == pytest.approx(medpy_asd, rel=1e-6)
    # and the transcription can tell the definitions apart on these masks
    if seed == 0 and spacing is None:
        assert abs(hd95(pred, gt, pooled=False) - _medpy_hd95(pred, gt)) > 0.1


def test_empty_masks_and_bad_input():
    empty = np.zeros((6, 6, 6), bool)
    full = _cube((6, 6, 6), (1, 1, 1), (4, 4, 4))
    assert segmentation_metrics(empty, empty) == {"dice": 1.0, "jaccard": 1.0, "hd95": 0.0, "asd": 0.0}
    m = segmentation_metrics(empty, full)
    assert m["dice"] == 0.0 and m["jaccard"] == 0.0 and math.isnan(m["hd95"]) and math.isnan(m["asd"])
    assert hd95(empty, empty, pooled=False) == 0.0 and math.isnan(hd95(full, empty, pooled=False))
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
