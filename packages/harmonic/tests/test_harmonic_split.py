"""The vowel split: Deterding's speaker-disjoint train/test rows and the 10 formant features only."""

import numpy as np
import torch
from harmonic.experiments import load_split

from xentlab.data.tabular import load_table


def test_vowel_speaker_split_is_speaker_disjoint_and_formants_only():
    x, y, _ = load_table("vowel")  # columns: TT, speaker, sex, F0..F9
    split = load_split({"dataset": "vowel", "split": "speaker", "n_folds": 5}, seed=3)
    # Deterding's split: 528 rows of speakers 0-7 for training, 462 rows of speakers 8-14 for test
    assert split.x_train.shape == (528, 10) and split.x_test.shape == (462, 10)
    train_rows, test_rows = np.flatnonzero(x[:, 0] == 0), np.flatnonzero(x[:, 0] == 1)
    assert set(x[train_rows, 1]).isdisjoint(set(x[test_rows, 1]))
    assert torch.equal(split.y_train, torch.from_numpy(y[train_rows]))
    assert torch.equal(split.y_test, torch.from_numpy(y[test_rows]))
    # formants standardised with the training speakers' statistics (float64 hand computation)
    f_tr, f_te = x[train_rows, 3:13], x[test_rows, 3:13]
    mu, sd = f_tr.mean(0), f_tr.std(0)
    np.testing.assert_allclose(split.x_train.numpy(), (f_tr - mu) / sd, rtol=0, atol=1e-5)
    np.testing.assert_allclose(split.x_test.numpy(), (f_te - mu) / sd, rtol=0, atol=1e-5)
    assert split.num_classes == 11


def test_folds_split_is_unchanged_for_digits():
    a = load_split({"dataset": "digits", "n_folds": 5}, seed=6)
    from xentlab.data.tabular import load_tabular

    b = load_tabular("digits", fold=1, n_folds=5)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
