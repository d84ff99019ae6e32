import numpy as np
import pytest
import torch

from xentlab.metrics import accuracy, bootstrap_ci, ece, summarize


def test_bootstrap_ci_deterministic_and_brackets_mean():
    x = [0.2, 0.4, 0.5, 0.9, 0.7]
    lo, hi = bootstrap_ci(x)
    assert (lo, hi) == bootstrap_ci(x)
    assert lo < np.mean(x) < hi
    assert min(x) <= lo and hi <= max(x)


def test_bootstrap_ci_degenerate_cases():
    assert bootstrap_ci([0.3]) == (0.3, 0.3)
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_bootstrap_ci_percentile_of_the_mean_by_enumeration():
    # x = [0, 0, 0, 0, 1]: a resample's mean is K/5 with K ~ Binomial(5, 0.2), so
    # P(K <= 0, 1, 2, 3) = 0.328, 0.738, 0.942, 0.994. The percentile 95% CI of the mean is therefore
    # (K=0, K=3) = (0.0, 0.6) (both quantiles sit >= 5 Monte-Carlo sds from a jump at 2000 resamples);
    # the "basic" interval would be 2 * 0.2 - (0.6, 0.0) = (-0.2, 0.4), the median's (0, 1).
    lo, hi = bootstrap_ci([0.0, 0.0, 0.0, 0.0, 1.0])
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.6, abs=1e-12)
    # at level 0.8 the upper quantile (90%) falls in K = 2
    lo, hi = bootstrap_ci([0.0, 0.0, 0.0, 0.0, 1.0], level=0.8)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.4, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bootstrap_ci_default_is_95_percent_normal_width(seed):
    # 400 normal values: the bootstrap distribution of the mean is ~ N(mean, sd / sqrt(n)) (ddof=0), so
    # the default 95% interval reaches 1.96 standard errors each side (the Monte-Carlo sd of each end is
    # ~0.06 se at 2000 resamples); a 90% interval would give 1.645, too few resamples a ragged width.
    x = np.random.default_rng(seed).standard_normal(400)
    se = x.std() / np.sqrt(len(x))
    lo, hi = bootstrap_ci(x)
    assert 1.80 < (x.mean() - lo) / se < 2.12
    assert 1.80 < (hi - x.mean()) / se < 2.12


def test_bootstrap_ci_non_finite_gives_nan():
    lo, hi = bootstrap_ci([0.1, float("nan"), 0.3])
    assert np.isnan(lo) and np.isnan(hi)
    # an infinite seed value too (resampling alone would give (0.2, inf))
    lo, hi = bootstrap_ci([0.2, float("inf")])
    assert np.isnan(lo) and np.isnan(hi)


def test_summarize():
    s = summarize([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["n"] == 3
    assert s["std"] == pytest.approx(1.0)  # sample std, ddof=1


def test_accuracy():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy(logits, torch.tensor([0, 1]))


def test_ece_hand_computed():
    # 4 samples, confidences 0.9, 0.9, 0.6, 0.6; the first bin (0.9) has accuracy 1/2, the 0.6 bin 1/2.
    # ECE = 0.5*|0.9-0.5| + 0.5*|0.6-0.5| = 0.25
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    target = torch.tensor([0, 1, 0, 1])
    assert ece(probs, target, n_bins=10) == pytest.approx(0.25, abs=1e-6)


def test_ece_default_15_bins_and_max_norm_by_hand():
    # confidences 0.62 (right) and 0.68 (wrong): 15 equal-width bins split them at 10/15 = 0.667, so
    # ECE = 0.5 * |1 - 0.62| + 0.5 * |0 - 0.68| = 0.53 and MCE = 0.68; 10 bins would pool them
    # (one bin, accuracy 0.5, confidence 0.65: ECE 0.15).
    probs = torch.tensor([[0.62, 0.38], [0.68, 0.32]])
    target = torch.tensor([0, 1])
    assert ece(probs, target) == pytest.approx(0.53, abs=1e-6)
    assert ece(probs, target, norm="max") == pytest.approx(0.68, abs=1e-6)
    assert ece(probs, target, n_bins=10) == pytest.approx(0.15, abs=1e-6)


def test_ece_rejects_non_matrix_probs():
    with pytest.raises(ValueError, match="probs must be"):
        ece(torch.tensor([0.62, 0.68]), torch.tensor([0, 1]))
