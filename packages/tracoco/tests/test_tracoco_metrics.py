"""The case metrics as the official evaluation computes them (``Code/VnetLA/validate.py``,
``calculate_metric_percase``: medpy ``dc``, ``jc``, ``hd95(pred, gt)``, ``asd(pred, gt)``; an empty prediction
scores all zeros). medpy's HD95 pools the surface distances of both directions; the core's ``hd95`` computes
it by default and is tested against a transcription of medpy in ``shared/tests/test_segmentation_metrics.py``.
"""

import numpy as np
import pytest
from tracoco.evaluate import case_metrics


def _line(n, idx):
    """A (1, 1, n) volume with foreground at ``idx``: every foreground voxel is a surface voxel."""
    v = np.zeros((1, 1, n), bool)
    v[0, 0, list(idx)] = True
    return v


def test_case_metrics_hd95_is_the_official_pooled_one():
    # gt = z 0..9, pred = the same plus a stray voxel at z 20: medpy's pooled HD95 is 0 (MONAI's max of the
    # directed percentiles, which the package reported up to version 1, is 5.5); ASD pred -> gt = 11 / 11
    gt, pred = _line(32, range(10)), _line(32, [*range(10), 20])
    m = case_metrics(pred, gt)
    assert m["hd95"] == pytest.approx(0.0, abs=1e-9)
    assert m["asd"] == pytest.approx(1.0, rel=1e-6)
    assert m["dice"] == pytest.approx(2 * 10 / 21) and m["jaccard"] == pytest.approx(10 / 11)


def test_case_metrics_scores_an_empty_prediction_zero():
    gt = _line(8, [2, 3])
    assert case_metrics(np.zeros_like(gt), gt) == {"dice": 0.0, "jaccard": 0.0, "hd95": 0.0, "asd": 0.0}
