"""xentlab.metrics.calibration: hand-computed bins/ECE/Brier, agreement with xentlab.metrics.ece, AUROC."""

import math
import warnings

import numpy as np
import pytest
import torch

from xentlab.metrics import ece as tm_ece
from xentlab.metrics.calibration import (
    brier_score,
    brier_top1,
    calibration_report,
    correctness_auroc,
    ece,
    ece_from_confidence,
    nll,
    plot_reliability,
    reliability_bins,
    reliability_figure,
)


def test_bins_and_ece_by_hand():
    # 4 samples, 2 bins (0, .5], (.5, 1]: confidences .3 .4 | .8 .9, correct F T | T F
    # bin 1: conf .35, acc .5 -> gap .15; bin 2: conf .85, acc .5 -> gap .35; ECE = .5*.15 + .5*.35 = .25
    b = reliability_bins([0.3, 0.4, 0.8, 0.9], [0, 1, 1, 0], n_bins=2)
    assert b.count.tolist() == [2, 2]
    assert np.allclose(b.confidence, [0.35, 0.85]) and np.allclose(b.accuracy, [0.5, 0.5])
    assert math.isclose(b.ece(), 0.25) and math.isclose(b.mce(), 0.35)


def test_bin_edges_are_left_open_right_closed():
    # 0.5 belongs to (0, 0.5] (the reference code's `conf > lo and conf <= hi`); 0 goes to the first bin
    b = reliability_bins([0.0, 0.5, 0.50001, 1.0], [1, 1, 1, 1], n_bins=2)
    assert b.count.tolist() == [2, 2]


def test_ece_matches_torchmetrics_away_from_edges():
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(500, 10, generator=g)
    probs = logits.softmax(1)
    y = torch.randint(0, 10, (500,), generator=g)
    for bins in (10, 15, 25):
        assert abs(ece(probs, y, bins) - tm_ece(probs, y, n_bins=bins)) < 1e-5


def test_perfectly_calibrated_and_overconfident():
    # 10 samples at confidence 0.7 of which 7 correct: ECE 0; all correct at confidence 0.7: ECE 0.3
    assert math.isclose(ece_from_confidence([0.7] * 10, [1] * 7 + [0] * 3, 15), 0.0, abs_tol=1e-12)
    assert math.isclose(ece_from_confidence([0.7] * 10, [1] * 10, 15), 0.3)


def test_brier_and_nll_by_hand():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
    y = np.array([0, 2])
    # sample 1: .3^2 + .2^2 + .1^2 = .14; sample 2: .1^2 + .6^2 + .7^2 = .86; mean .5
    assert math.isclose(brier_score(p, y), 0.5)
    # top-1: (0.7 - 1)^2 = .09 and (0.6 - 0)^2 = .36; mean .225
    assert math.isclose(brier_top1(p, y), 0.225)
    assert math.isclose(nll(p, y), -(math.log(0.7) + math.log(0.3)) / 2)


def test_auroc_of_correctness():
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]])
    assert math.isclose(correctness_auroc(p, [0, 0, 1, 1]), 1.0)  # confident ones right, unsure ones wrong
    assert math.isclose(correctness_auroc(p, [1, 1, 0, 0]), 0.0)
    assert math.isnan(correctness_auroc(p, [0, 0, 0, 0]))


def test_report_keys_and_errors(tmp_path):
    g = torch.Generator().manual_seed(1)
    probs = torch.randn(50, 4, generator=g).softmax(1)
    y = torch.randint(0, 4, (50,), generator=g)
    r = calibration_report(probs, y)
    assert {"acc", "ece15", "ece25", "brier", "brier_top1", "nll", "auroc"} <= set(r)
    with pytest.raises(ValueError, match="probs"):
        ece(torch.rand(5), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="n_bins"):
        reliability_bins([0.5], [1], n_bins=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability_bins([1.5], [1])


def test_reliability_plot_writes_a_png(tmp_path):
    import matplotlib.pyplot as plt

    b = reliability_bins(np.linspace(0.05, 0.95, 40), np.arange(40) % 2, 10)
    fig, ax = plt.subplots()
    plot_reliability(ax, b, label="x")
    plt.close(fig)
    path = reliability_figure({"a": b, "b": b}, tmp_path / "rel.png")
    assert path.stat().st_size > 1000


def test_default_is_15_bins():
    # confidences 0.62 (right) and 0.68 (wrong) fall on either side of 10/15: with the default 15 bins
    # ECE = 0.5 * 0.38 + 0.5 * 0.68 = 0.53; 10 bins would pool them (accuracy .5, confidence .65: 0.15)
    conf, corr = [0.62, 0.68], [1, 0]
    assert len(reliability_bins(conf, corr).count) == 15
    assert math.isclose(ece_from_confidence(conf, corr), 0.53)
    assert math.isclose(ece(np.array([[0.62, 0.38], [0.68, 0.32]]), [0, 1]), 0.53)
    assert math.isclose(ece_from_confidence(conf, corr, 10), 0.15)


def test_confidence_just_above_one_goes_to_the_last_bin():
    # rounding can push a softmax maximum to 1 + 1e-7 (accepted up to 1 + 1e-6): it stays in the last bin
    b = reliability_bins([1.0 + 5e-7, 0.2], [1, 0], n_bins=2)
    assert b.count.tolist() == [1, 1] and len(b.confidence) == 2


def test_nll_clips_a_zero_probability_at_eps():
    # p_y = 0 would give an infinite loss; it is clipped at eps = 1e-12: -log(1e-12) = 12 ln 10
    p = np.array([[0.0, 1.0], [0.5, 0.5]])
    assert math.isclose(nll(p, [0, 0]), (12 * math.log(10) + math.log(2)) / 2)
    assert math.isclose(nll(p, [0, 0], eps=1e-6), (6 * math.log(10) + math.log(2)) / 2)


def test_empty_probs_are_rejected():
    with pytest.raises(ValueError, match="empty"):
        brier_score(np.zeros((0, 3)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="empty"):
        nll(np.zeros((0, 3)), np.zeros(0, dtype=int))


def test_auroc_undefined_without_warning():
    # every prediction wrong (or right): NaN, decided here rather than left to scikit-learn's warning
    p = np.array([[0.9, 0.1], [0.6, 0.4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(correctness_auroc(p, [1, 1]))
        assert math.isnan(correctness_auroc(p, [0, 0]))


def test_report_values_by_hand():
    # top-1: (0.7, right), (0.6, wrong), (0.9, right), (0.55, wrong)
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.05, 0.05, 0.9], [0.55, 0.45, 0.0]])
    y = np.array([0, 2, 2, 1])
    r = calibration_report(p, y)
    assert math.isclose(r["acc"], 0.5)
    assert math.isclose(r["mean_conf"], (0.7 + 0.6 + 0.9 + 0.55) / 4)
    assert math.isclose(r["brier_top1"], (0.3**2 + 0.6**2 + 0.1**2 + 0.55**2) / 4)
    assert math.isclose(r["brier_top1"], brier_top1(p, y))
    assert math.isclose(r["brier"], brier_score(p, y)) and math.isclose(r["nll"], nll(p, y))
    assert math.isclose(r["ece15"], ece(p, y, 15)) and math.isclose(r["ece25"], ece(p, y, 25))
    assert math.isclose(r["auroc"], 1.0)  # both right predictions are more confident than both wrong ones


def test_reliability_plot_gap_runs_from_accuracy_to_confidence():
    import matplotlib.pyplot as plt

    # bins (0, .5], (.5, 1]: confidence .35 / .85, accuracy .5 / .5 (test_bins_and_ece_by_hand)
    b = reliability_bins([0.3, 0.4, 0.8, 0.9], [0, 1, 1, 0], n_bins=2)
    fig, ax = plt.subplots()
    plot_reliability(ax, b)
    hatched = [r for r in ax.patches if r.get_hatch()]
    plt.close(fig)
    spans = sorted((r.get_y(), r.get_y() + r.get_height()) for r in hatched)
    assert spans == [pytest.approx((0.5, 0.35)), pytest.approx((0.5, 0.85))]


def test_reliability_figure_has_a_row_per_ncols_panels(tmp_path):
    import matplotlib.image

    # 5 panels, 4 columns: 2 rows of 3 x 3 inches at 110 dpi -> 1320 x 660 pixels
    b = reliability_bins([0.3, 0.4, 0.8, 0.9], [0, 1, 1, 0], n_bins=2)
    path = reliability_figure({str(i): b for i in range(5)}, tmp_path / "rel.png")
    assert matplotlib.image.imread(path).shape[:2] == (660, 1320)
