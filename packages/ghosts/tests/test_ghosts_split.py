"""The official per-class digits split (experiments/{lrspike,tempfingerprint,phasetransition}/run.py
::stratified_split, ghostenvelope/run.py::stratSplit) drawn sample for sample and in order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ghosts.data import load_digits, official_split_indices


def _official_transcription(y: np.ndarray, test_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # The official procedure step by step, restated independently: one default_rng(seed); for each
    # label in sorted order, shuffle that label's row indices in place and send the first
    # int(round(ratio * size)) to the test set; concatenate; shuffle train, then test.
    gen = np.random.default_rng(seed)
    tr, te = [], []
    for c in sorted(set(y.tolist())):
        idx = np.where(y == c)[0]
        gen.shuffle(idx)
        k = int(round(test_ratio * len(idx)))
        te.append(idx[:k])
        tr.append(idx[k:])
    tr_all, te_all = np.concatenate(tr), np.concatenate(te)
    gen.shuffle(tr_all)
    gen.shuffle(te_all)
    return tr_all, te_all


@pytest.mark.parametrize("seed", [0, 3, 42])
@pytest.mark.parametrize("ratio", [0.2, 0.3])
def test_split_equals_the_official_transcription_on_a_small_array(seed, ratio):
    # Uneven classes (7, 12, 5, 9 rows), interleaved, labels not in row order.
    y = np.array([2] * 7 + [0] * 12 + [3] * 5 + [1] * 9)
    y = y[np.random.default_rng(99).permutation(len(y))]
    ours_tr, ours_te = official_split_indices(y, ratio, seed)
    ref_tr, ref_te = _official_transcription(y, ratio, seed)
    np.testing.assert_array_equal(ours_tr, ref_tr)
    np.testing.assert_array_equal(ours_te, ref_te)
    # per class: round(ratio * size) test rows, the rest train, nothing lost or repeated
    for c, size in {0: 12, 1: 9, 2: 7, 3: 5}.items():
        assert (y[ours_te] == c).sum() == int(round(ratio * size))
    assert sorted(np.concatenate([ours_tr, ours_te]).tolist()) == list(range(len(y)))


def test_split_differs_from_a_sorted_or_sklearn_order():
    # The training order is the generator's, not the row order (a test that could not fail otherwise).
    y = np.repeat(np.arange(4), 10)
    tr, _ = official_split_indices(y, 0.2, 0)
    assert not np.array_equal(tr, np.sort(tr))


def test_load_digits_returns_the_official_rows_in_the_official_order():
    from sklearn.datasets import load_digits as sklearn_digits

    x, y = sklearn_digits(return_X_y=True)
    x = x.astype(np.float32) / np.float32(16.0)  # official: np.loadtxt(dtype=float32)[:, :-1] / 16.0
    for seed, ratio in [(0, 0.2), (42, 0.3)]:
        tr, te = _official_transcription(y, ratio, seed)
        d = load_digits(split_seed=seed, test_size=ratio)
        assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
        np.testing.assert_array_equal(d.x_train.numpy(), x[tr])
        np.testing.assert_array_equal(d.y_train.numpy(), y[tr])
        np.testing.assert_array_equal(d.x_test.numpy(), x[te])
        np.testing.assert_array_equal(d.y_test.numpy(), y[te])
    # 80/20 of digits: class sizes 178, 182, 177, 183, 181, 182, 181, 179, 174, 180 give
    # round(0.2 n) = 36, 36, 35, 37, 36, 36, 36, 36, 35, 36 test rows: 359 test, 1438 train
    d = load_digits(split_seed=0, test_size=0.2)
    assert (len(d.y_train), len(d.y_test)) == (1438, 359)
    assert torch.bincount(d.y_test).tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]


def test_split_rejects_bad_input():
    with pytest.raises(ValueError, match="test_ratio"):
        official_split_indices(np.arange(10) % 2, 1.0, 0)
    with pytest.raises(ValueError, match="1-d"):
        official_split_indices(np.zeros((2, 2)), 0.2, 0)
