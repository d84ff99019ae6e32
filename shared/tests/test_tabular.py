"""xentlab.data.tabular: fixed folds, train-only standardisation, label coding, clear errors."""

import numpy as np
import pytest
import torch

from xentlab.data.tabular import fold_indices, list_tabular, load_table, load_tabular, stratified_holdout


def test_letter_shape_and_folds():
    s = load_tabular("letter", fold=0)
    assert s.num_classes == 26 and s.num_features == 16
    assert len(s.x_train) == 16000 and len(s.x_test) == 4000
    assert s.class_names[0] == "A" and s.class_names[-1] == "Z"
    # the test folds partition the table
    _, y, _ = load_table("letter")
    folds = fold_indices(y, 5, 0)
    all_test = np.sort(np.concatenate([te for _, te in folds]))
    np.testing.assert_array_equal(all_test, np.arange(len(y)))
    for tr, te in folds:
        assert not set(tr) & set(te)


def test_standardisation_fitted_on_train_only():
    s = load_tabular("vowel", fold=1)
    x_tr = s.x_train.double()
    assert torch.allclose(x_tr.mean(0), torch.zeros(s.num_features, dtype=torch.float64), atol=1e-5)
    std = x_tr.std(0, unbiased=False)
    assert torch.all((std - 1).abs() < 1e-4) or torch.all(((std - 1).abs() < 1e-4) | (std < 1e-6))
    # the test part is transformed with the training statistics, so its mean is not exactly 0
    assert s.x_test.double().mean(0).abs().max() > 1e-3
    # reproduce by hand from the raw table
    x, _, _ = load_table("vowel")
    tr, te = fold_indices(load_table("vowel")[1], 5, 0)[1]
    mu, sd = x[tr].mean(0), x[tr].std(0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    np.testing.assert_allclose(s.x_test.numpy(), ((x[te] - mu) / sd).astype(np.float32), rtol=1e-5, atol=1e-5)


def test_determinism_and_split_seed():
    a, b = load_tabular("wine", fold=2), load_tabular("wine", fold=2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    c = load_tabular("wine", fold=2, split_seed=1)
    assert not torch.equal(a.x_test, c.x_test)


def test_imbalanced_minority_is_positive_and_categoricals_one_hot():
    s = load_tabular("abalone19")  # raw table has a categorical 'Sex' column -> 3 one-hot columns
    assert s.num_classes == 2 and s.num_features == 7 + 3
    assert s.class_names[1] == "positive" and 0 < s.positive_rate < 0.01
    # stratified: the positive rate of each fold matches the table's within one example
    n_pos = int((s.y_test == 1).sum())
    assert abs(n_pos - s.positive_rate * len(s.y_test)) <= 1


def test_sklearn_sets_and_listing():
    assert {"digits", "breast_cancer", "wine"} <= set(list_tabular("sklearn"))
    assert "letter" in list_tabular("balanced") and len(list_tabular("imbalanced")) == 100
    s = load_tabular("breast_cancer")
    assert s.num_features == 30 and s.positive_rate < 0.5  # minority (malignant) coded as 1


def test_holdout_is_stratified_and_disjoint():
    y = torch.tensor([0] * 50 + [1] * 10)
    keep, hold = stratified_holdout(y, 0.2, seed=3)
    assert len(set(keep.tolist()) & set(hold.tolist())) == 0 and len(keep) + len(hold) == 60
    assert int((y[hold] == 1).sum()) == 2 and int((y[hold] == 0).sum()) == 10


def test_errors():
    with pytest.raises(KeyError, match="unknown tabular dataset"):
        load_tabular("no-such-set")
    with pytest.raises(ValueError, match="fold must be"):
        load_tabular("wine", fold=5, n_folds=5)
    with pytest.raises(ValueError, match="kind must be"):
        list_tabular("other")


def test_vowel_speaker_split_keeps_speakers_apart_and_uses_the_formants():
    from xentlab.data.tabular import VOWEL_FORMANTS, load_table, load_vowel_speaker_split

    x, y, _ = load_table("vowel")
    s = load_vowel_speaker_split()
    # Deterding's split: 528 rows of speakers 0-7 train, 462 rows of speakers 8-14 test (11 vowels x 6 repeats)
    assert (len(s.x_train), len(s.x_test), s.num_features, s.num_classes) == (528, 462, 10, 11)
    train_speakers = set(x[x[:, 0] == 0, 1].tolist())
    test_speakers = set(x[x[:, 0] == 1, 1].tolist())
    assert len(train_speakers) == 8 and len(test_speakers) == 7 and not train_speakers & test_speakers
    # the features are the formant columns, standardised with the training rows' mean and std
    raw_train = x[x[:, 0] == 0][:, VOWEL_FORMANTS]
    expected = (raw_train - raw_train.mean(0)) / raw_train.std(0)
    assert np.allclose(s.x_train.numpy(), expected, atol=1e-5)
    assert torch.equal(s.y_test, torch.from_numpy(y[x[:, 0] == 1]))


def test_vowel_speaker_split_drops_an_unshuffled_kfold_part_of_the_training_rows():
    from sklearn.model_selection import KFold

    from xentlab.data.tabular import load_vowel_speaker_split

    full = load_vowel_speaker_split()
    for fold in (0, 4):
        s = load_vowel_speaker_split(drop_train_fold=(fold, 5))
        keep, _ = list(KFold(5).split(np.zeros(528)))[fold]  # sklearn's own unshuffled folds
        assert (
            len(s.x_train) == len(keep) == (422 if fold == 0 else 423) and s.fold == fold
        )  # folds 106 x 3, 105 x 2
        assert torch.equal(s.y_train, full.y_train[keep]) and torch.equal(s.y_test, full.y_test)
    with pytest.raises(ValueError, match="drop_train_fold"):
        load_vowel_speaker_split(drop_train_fold=(5, 5))
