"""Synthetic generator, reczoo CSV loader, smoke and --scale full end to end on a tiny fixture."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fcn.data import SyntheticConfig, load_reczoo, make_synthetic
from fcn.train import build_model

from xentlab.testing import run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"
SMALL = replace(SyntheticConfig(), n_train=4000, n_valid=1000, n_test=3000)


def test_synthetic_is_deterministic_and_has_target_ctr():
    a, b = make_synthetic(SMALL), make_synthetic(SMALL)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert abs(a.info["ctr"] - 0.2) < 0.02
    for j, v in enumerate(a.vocab_sizes):
        assert a.x_train[:, j].min() >= 0 and a.x_train[:, j].max() < v
    # Zipf: value 0 is the most frequent in every field
    assert all(np.bincount(a.x_train[:, j]).argmax() == 0 for j in range(len(a.vocab_sizes)))


def test_synthetic_bayes_logit_beats_chance():
    from sklearn.metrics import roc_auc_score

    d = make_synthetic(SMALL)
    assert roc_auc_score(d.y_test, d.bayes_logit_test) > 0.8


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="outside"):
        make_synthetic(replace(SMALL, pairs=((0, 99),)))
    with pytest.raises(ValueError, match="unknown arm"):
        build_model("xdeepfm", [3], {"emb_dim": 2})


def _write_fixture(root: Path, n: int = 80) -> None:
    rng = np.random.default_rng(0)
    base = root / "Criteo_x4"
    base.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        with (base / f"{split}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["label", "I1", "I2", "C1", "C2"])
            for i in range(n):
                c1 = rng.choice(["a", "b", "c"])
                label = int(c1 == "a") if i % 4 else int(rng.random() < 0.5)
                i1 = "" if i % 7 == 0 else str(int(rng.integers(0, 50)))
                w.writerow([label, i1, str(int(rng.integers(0, 5))), c1, rng.choice(["x", "y", "z", "rare"])])


def test_reczoo_loader(tmp_path):
    _write_fixture(tmp_path)
    d = load_reczoo(tmp_path, "Criteo_x4")
    assert d.x_train.shape == (80, 4) and d.vocab_sizes[2] == 5  # C1: a, b, c + padding + OOV
    assert d.x_test.max(0).tolist() < d.vocab_sizes
    with pytest.raises(FileNotFoundError, match="reczoo layout"):
        load_reczoo(tmp_path, "Avazu_x4")


def test_smoke(tmp_path):
    result = run_smoke(REPRO, tmp_path)
    assert "fcn_tribce/test_auc" in result["metrics"]


def test_full_scale_end_to_end_on_fixture(tmp_path, monkeypatch):
    _write_fixture(tmp_path / "data")
    monkeypatch.setenv("FCN_DATA_ROOT", str(tmp_path / "data"))
    result = run_smoke(REPRO, tmp_path / "out", extra_args=["--scale", "full", "--seeds", "0"])
    assert 0.0 <= result["metrics"]["fcn_tribce/test_auc"]["mean"] <= 1.0


def test_extra_rows_keep_base_rows_and_come_from_the_same_world():
    """Protocol v4: extra rows are appended after the base train / valid rows; the base rows, the test
    split and its Bayes logit stay bit-identical, and a prefix of a bigger extra draw is the smaller draw."""
    base = make_synthetic(SMALL)
    big = make_synthetic(replace(SMALL, extra_train=3000, extra_valid=2000))
    small = make_synthetic(replace(SMALL, extra_train=1000, extra_valid=500))
    np.testing.assert_array_equal(big.x_train[:4000], base.x_train)
    np.testing.assert_array_equal(big.x_valid[:1000], base.x_valid)
    np.testing.assert_array_equal(big.x_test, base.x_test)
    np.testing.assert_array_equal(big.bayes_logit_test, base.bayes_logit_test)
    assert big.x_train.shape == (7000, 8) and big.x_valid.shape == (3000, 8)
    np.testing.assert_array_equal(small.x_train, big.x_train[:5000])
    np.testing.assert_array_equal(small.y_valid, big.y_valid[:1500])
    # same world: same CTR and the same Zipf head as the base draw (train and valid streams differ)
    assert abs(big.y_train[4000:].mean() - 0.2) < 0.03 and abs(big.y_valid[1000:].mean() - 0.2) < 0.03
    assert not np.array_equal(big.x_train[4000:6000], big.x_valid[1000:3000])
    with pytest.raises(ValueError, match="extra_train"):
        make_synthetic(replace(SMALL, extra_train=-1))


def test_extra_rows_follow_the_base_worlds_labels():
    """The extra rows' labels come from the base world: a logistic model fitted on the base train rows
    (one-hot fields) ranks the extra validation rows as well as the base validation rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import OneHotEncoder

    d = make_synthetic(replace(SMALL, extra_valid=4000))
    enc = OneHotEncoder(handle_unknown="ignore").fit(d.x_train)
    clf = LogisticRegression(max_iter=300).fit(enc.transform(d.x_train), d.y_train)
    auc = [roc_auc_score(d.y_valid[s], clf.decision_function(enc.transform(d.x_valid[s])))
           for s in (slice(0, 1000), slice(1000, None))]  # fmt: skip
    assert abs(auc[0] - auc[1]) < 0.04 and auc[1] > 0.55  # another world would rank at ~0.5
