import numpy as np
import pytest

from xentlab.metrics.verification import cosine_trials, eer, eer_with_threshold


def eer_brute_force(scores, labels) -> float:
    """Sweep every threshold t in the scores (accept >= t), plus 'accept nothing'; the EER is where
    FAR - FRR changes sign, interpolated linearly between the two neighbouring operating points."""
    s, y = np.asarray(scores, float), np.asarray(labels)
    ts = np.concatenate([[np.inf], np.sort(np.unique(s))[::-1]])
    far = np.array([np.mean(s[y == 0] >= t) for t in ts])
    frr = np.array([np.mean(s[y == 1] < t) for t in ts])
    d = frr - far
    k = np.flatnonzero(d <= 0)[0]
    if d[k] == 0:
        return float(far[k])
    w = d[k - 1] / (d[k - 1] - d[k])
    return float(far[k - 1] + w * (far[k] - far[k - 1]))


def test_hand_examples():
    # targets {3, 1}, non-targets {2, 0}: accepting >= 1 gives FAR = 1/2 (2 accepted) and
    # FRR = 0; accepting >= 2 gives FAR = 1/2, FRR = 1/2 (1 rejected): FAR = FRR = 0.5 there.
    assert eer([3, 1, 2, 0], [1, 1, 0, 0]) == pytest.approx(0.5)
    # perfectly separated -> 0; perfectly reversed -> 1
    assert eer([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 0.0
    assert eer([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == pytest.approx(1.0)
    # one target below one of four non-targets: targets {5, 4, 1}, non-targets {3, 2, 1.5, 0}.
    # Accept >= 4: FAR 0, FRR 1/3. Accept >= 3: FAR 1/4, FRR 1/3. Accept >= 2: FAR 1/2, FRR 1/3.
    # Accept >= 1.5: FAR 3/4, FRR 1/3. Accept >= 1: FAR 3/4, FRR 0. FRR - FAR goes from +1/12 (>= 3)
    # to -1/6 (>= 2): interpolate FAR: 1/4 + (1/12)/(1/12 + 1/6) * (1/2 - 1/4) = 1/4 + 1/12 = 1/3.
    assert eer([5, 4, 1, 3, 2, 1.5, 0], [1, 1, 1, 0, 0, 0, 0]) == pytest.approx(1 / 3)


def test_threshold_is_interpolated_by_hand():
    # the last example above: FRR - FAR = +1/12 at threshold 3 and -1/6 at threshold 2, so the weight
    # is (1/12) / (1/4) = 1/3 of the way from 3 to 2: threshold 8/3 where FAR = FRR = 1/3
    rate, thr = eer_with_threshold([5, 4, 1, 3, 2, 1.5, 0], [1, 1, 1, 0, 0, 0, 0])
    assert (rate, thr) == (pytest.approx(1 / 3), pytest.approx(8 / 3))
    # a target and a non-target tied at the top score: the crossing is between "accept nothing"
    # (threshold +inf) and accepting both; EER 1/2 at the tied score itself (not inf or NaN)
    assert eer_with_threshold([1.0, 1.0], [1, 0]) == (pytest.approx(0.5), 1.0)


def test_matches_brute_force_on_random_scores():
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = rng.integers(0, 2, 300)
        s = rng.normal(size=300) + 1.2 * y
        assert eer(s, y) == pytest.approx(eer_brute_force(s, y), abs=1e-12)


def test_gaussian_scores_give_the_textbook_eer():
    # target ~ N(d, 1), non-target ~ N(0, 1): EER = Phi(-d/2) (threshold d/2 by symmetry)
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    d = 2.0
    s = np.concatenate([rng.normal(d, 1, 20000), rng.normal(0, 1, 20000)])
    y = np.concatenate([np.ones(20000), np.zeros(20000)])
    rate, thr = eer_with_threshold(s, y)
    assert rate == pytest.approx(norm.cdf(-d / 2), abs=0.006)
    assert thr == pytest.approx(d / 2, abs=0.03)


def test_invariant_to_monotone_transforms():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    s = rng.normal(size=200) + y
    assert eer(np.exp(3 * s), y) == pytest.approx(eer(s, y))


def test_cosine_trials():
    e = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    scores, labels = cosine_trials(e, np.array([7, 7, 9]))
    assert np.allclose(scores, [1.0, 0.0, 0.0])  # pairs (0,1), (0,2), (1,2)
    assert labels.tolist() == [1, 0, 0]


def test_bad_inputs():
    with pytest.raises(ValueError, match="both"):
        eer([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="0 .*or 1"):
        eer([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="length"):
        eer([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match="finite"):
        eer([np.nan, 0.2], [1, 0])
    with pytest.raises(ValueError, match="zero norm"):
        cosine_trials(np.zeros((2, 3)), [0, 1])
