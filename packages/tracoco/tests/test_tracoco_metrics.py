"""HD95 and ASD as the official evaluation computes them (``medpy.metric.binary.hd95`` / ``asd``).

The official ``Code/VnetLA/validate.py`` (and ``Code/UnetBRATS/validate.py``) score a case with
``metric.binary.hd95(pred, gt)`` and ``metric.binary.asd(pred, gt)``. medpy's ``__surface_distances``:
surface = mask XOR ``binary_erosion(mask, generate_binary_structure(ndim, 1))`` (border value 0),
distances = ``distance_transform_edt(~reference_surface, sampling=spacing)[result_surface]``;
``hd95 = numpy.percentile(hstack((d(pred -> gt), d(gt -> pred))), 95)`` (the two directions POOLED,
linear interpolation), ``asd = mean(d(pred -> gt))``. MONAI's ``compute_hausdorff_distance`` takes
the larger of the two directed 95th percentiles instead, which is what the package reported before.
"""

import math

import numpy as np
import pytest
from scipy.ndimage import binary_erosion, distance_transform_edt, generate_binary_structure
from tracoco.evaluate import case_metrics
from tracoco.metrics import hd95_pooled

from xentlab.metrics.segmentation import asd as core_asd
from xentlab.metrics.segmentation import hd95 as core_hd95


def _medpy_surface_distances(result, reference, spacing=None):
    """A direct float64 transcription of medpy's ``__surface_distances`` (connectivity 1)."""
    result, reference = np.asarray(result, bool), np.asarray(reference, bool)
    footprint = generate_binary_structure(result.ndim, 1)
    result_border = result ^ binary_erosion(result, structure=footprint, iterations=1)
    reference_border = reference ^ binary_erosion(reference, structure=footprint, iterations=1)
    dt = distance_transform_edt(~reference_border, sampling=spacing)
    return dt[result_border]


def _medpy_hd95(result, reference, spacing=None):
    d1 = _medpy_surface_distances(result, reference, spacing)
    d2 = _medpy_surface_distances(reference, result, spacing)
    return float(np.percentile(np.hstack((d1, d2)), 95))


def _medpy_asd(result, reference, spacing=None):
    return float(_medpy_surface_distances(result, reference, spacing).mean())


def _line(n, idx):
    """A (1, 1, n) volume with foreground at ``idx``: every foreground voxel is a surface voxel
    (its x and y neighbours lie outside the volume, where the erosion's border value is 0)."""
    v = np.zeros((1, 1, n), bool)
    v[0, 0, list(idx)] = True
    return v


def test_hd95_pooled_hand_derived_outlier_case():
    # gt = z 0..9, pred = z 0..9 plus one stray voxel at z 20 (11 voxels from gt's end at z 9).
    # pred -> gt: ten 0s and one 11 (11 values); gt -> pred: ten 0s.
    # medpy (pooled, 21 values: twenty 0s, one 11): percentile 95 sits at rank 0.95 * 20 = 19 -> 0.
    # MONAI (max of directed): pred -> gt rank 0.95 * 10 = 9.5 -> (0 + 11) / 2 = 5.5; gt -> pred 0.
    gt, pred = _line(32, range(10)), _line(32, [*range(10), 20])
    assert hd95_pooled(pred, gt) == pytest.approx(0.0, abs=1e-12)
    assert _medpy_hd95(pred, gt) == pytest.approx(0.0, abs=1e-12)
    assert core_hd95(pred, gt) == pytest.approx(5.5, abs=1e-5)  # the definition we reported before
    # the pooled value is symmetric in its arguments (medpy: "a real metric")
    assert hd95_pooled(gt, pred) == pytest.approx(0.0, abs=1e-12)


def test_hd95_pooled_hand_derived_interpolation_case():
    # gt = z 0, pred = z 0..9: pred -> gt 0, 1, ..., 9; gt -> pred 0.
    # pooled: [0, 0, 1, ..., 9] (11 values), rank 0.95 * 10 = 9.5 between 8 and 9 -> 8.5.
    # MONAI: directed pred -> gt rank 0.95 * 9 = 8.55 -> 8.55; gt -> pred 0 -> max 8.55.
    gt, pred = _line(16, [0]), _line(16, range(10))
    assert hd95_pooled(pred, gt) == pytest.approx(8.5, abs=1e-6)
    assert core_hd95(pred, gt) == pytest.approx(8.55, abs=1e-5)
    # with spacing 2 along z every distance doubles
    assert hd95_pooled(pred, gt, spacing=(1.0, 1.0, 2.0)) == pytest.approx(17.0, abs=1e-5)


def test_hd95_pooled_uses_the_one_erosion_surface():
    # A solid 5^3 cube: its surface is the 98 voxels removed by one 6-connected erosion (125 - 27);
    # the 3^3 interior plays no part. gt = the cube, pred = the cube shifted by 1 voxel along x.
    # medpy's transcription and ours must agree exactly (both surfaces, Euclidean distances).
    gt = np.zeros((12, 12, 12), bool)
    gt[3:8, 3:8, 3:8] = True
    pred = np.roll(gt, 1, axis=0)
    assert int((gt ^ binary_erosion(gt, generate_binary_structure(3, 1))).sum()) == 98
    assert hd95_pooled(pred, gt) == pytest.approx(_medpy_hd95(pred, gt), rel=1e-6)
    assert hd95_pooled(pred, gt) == pytest.approx(1.0, abs=1e-6)  # a pure shift of 1: 95% of distances <= 1


def _blobs(rng, shape, n):
    """Random unions of axis-aligned ellipsoids: irregular, asymmetric surfaces, some at the border."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).astype(float)
    mask = np.zeros(shape, bool)
    for _ in range(n):
        c = rng.uniform(0, np.array(shape))
        r = rng.uniform(2, 7, size=3)
        mask |= (((grid - c) / r) ** 2).sum(-1) <= 1
    return mask


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("spacing", [None, (1.0, 1.5, 2.5)])
def test_hd95_pooled_and_asd_match_the_medpy_transcription(seed, spacing):
    rng = np.random.default_rng(seed)
    gt = _blobs(rng, (24, 20, 28), 2)
    pred = _blobs(rng, (24, 20, 28), 3) | np.roll(gt, rng.integers(-2, 3), axis=int(rng.integers(3)))
    assert gt.any() and pred.any()
    # MONAI measures distances with a KD-tree in float64 and returns float32: 1e-6 relative
    assert hd95_pooled(pred, gt, spacing) == pytest.approx(_medpy_hd95(pred, gt, spacing), rel=1e-6)
    # ASD: medpy.asd(pred, gt) is directed, prediction -> truth; the core's asd is the same definition
    assert core_asd(pred, gt, spacing) == pytest.approx(_medpy_asd(pred, gt, spacing), rel=1e-6)
    assert core_asd(pred, gt, spacing) != pytest.approx(_medpy_asd(gt, pred, spacing), rel=1e-3)


def test_pooled_differs_from_max_of_directed_on_random_masks():
    # Not a definition test: the two HD95s are not the same number on these masks, so the
    # transcription test above could not pass with MONAI's max-of-directed value.
    diffs = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        gt = _blobs(rng, (24, 20, 28), 2)
        pred = _blobs(rng, (24, 20, 28), 3) | np.roll(gt, rng.integers(-2, 3), axis=int(rng.integers(3)))
        diffs.append(core_hd95(pred, gt) - _medpy_hd95(pred, gt))
    assert max(abs(d) for d in diffs) > 0.1


def test_hd95_pooled_empty_masks_and_bad_input():
    gt = _line(8, [2, 3])
    empty = np.zeros_like(gt)
    assert hd95_pooled(empty, empty) == 0.0  # the core's convention: both empty is a perfect match
    assert math.isnan(hd95_pooled(empty, gt)) and math.isnan(hd95_pooled(gt, empty))
    with pytest.raises(ValueError, match="shapes differ"):
        hd95_pooled(gt, np.zeros((1, 1, 9), bool))
    with pytest.raises(ValueError, match="binary"):
        hd95_pooled(gt.astype(float) * 0.5, gt)


def test_case_metrics_hd95_is_the_official_pooled_one():
    gt, pred = _line(32, range(10)), _line(32, [*range(10), 20])
    m = case_metrics(pred, gt)
    assert m["hd95"] == pytest.approx(_medpy_hd95(pred, gt), abs=1e-9)  # 0.0, not MONAI's 5.5
    assert m["asd"] == pytest.approx(_medpy_asd(pred, gt), rel=1e-6)  # 11 / 11 = 1.0
    assert m["asd"] == pytest.approx(1.0, rel=1e-6)
    assert m["dice"] == pytest.approx(2 * 10 / 21)
