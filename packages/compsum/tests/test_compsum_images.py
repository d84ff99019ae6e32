"""--scale full on a tiny CIFAR-format fixture written here (never the network): the data-root errors,
the margin attack objective, and reproduce.py --scale full end to end with monkeypatched sizes."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from compsum.images import (
    DATA_ENV,
    load_image_dataset,
    margin_objective,
    resolve_data_root,
    robust_eval,
)

from xentlab.testing import load_reproduce
from xentlab.testing.fixtures import write_cifar

REPRODUCE = Path(__file__).parents[1] / "reproduce.py"


def write_cifar10(root: Path) -> Path:
    return write_cifar(root, "cifar10", n_train=30, n_test=8)


def test_missing_data_root_names_the_variable_and_files(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=DATA_ENV) as e:
        resolve_data_root({"data_root": None})
    assert "cifar-10-batches-py" in str(e.value) and "cifar-100-python" in str(e.value)


def test_missing_files_name_the_expected_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-100-python") as e:
        load_image_dataset("cifar100", tmp_path)
    assert DATA_ENV in str(e.value)
    with pytest.raises(FileNotFoundError, match="train_32x32.mat"):
        load_image_dataset("svhn", tmp_path)
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_image_dataset("imagenet", tmp_path)


def test_fixture_loads_in_pixel_range(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(write_cifar10(tmp_path)))
    train, test = load_image_dataset("cifar10", resolve_data_root({}))
    assert train.x.shape == (30, 3, 32, 32) and test.x.shape == (8, 3, 32, 32)
    assert 0 <= float(train.x.min()) and float(train.x.max()) <= 1


def test_margin_objective_by_hand():
    # row 0: y=0, other max 2 -> 2 - 1 = 1; row 1: y=2, other max 0.5 -> 0.5 - 3 = -2.5; sum -1.5
    logits = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]])
    assert margin_objective(logits, torch.tensor([0, 2])).item() == pytest.approx(-1.5)


def test_robust_eval_zero_budget_equals_clean():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x, y = torch.rand(10, 3, 2, 2), torch.randint(0, 3, (10,))
    r = robust_eval(model, x, y, {"eps": 0.0, "step_size": 0.1, "steps": 3}, seed=0)
    assert r["robust"] == r["clean"] == r["robust_ce"] == r["robust_margin"]


def test_full_scale_end_to_end_on_fixture(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(write_cifar10(tmp_path / "data")))
    mod = load_reproduce(REPRODUCE)
    tiny = {"depth": 8, "width": 4, "epochs": 1, "batch_size": 8, "eval_every": 1, "max_test": 8}
    exps = {e.name: e for e in mod.EXPERIMENTS}
    monkeypatch.setitem(exps["bound"].configs, "full", exps["bound"].configs["smoke"])
    monkeypatch.setitem(exps["clean_cifar10"].configs, "full",
                        {**exps["clean_cifar10"].configs["full"], **tiny, "taus": [1.0, 2.0]})  # fmt: skip
    for name in ("clean_cifar100", "clean_svhn"):  # their loaders are checked above; no fixture needed
        monkeypatch.setitem(exps[name].configs, "full", None)
    adv = {**exps["adversarial_cifar10"].configs["full"], **tiny, "val_size": 4, "nus": [1.0], "betas": [6.0],
           "train_attack": {"eps": 8 / 255, "step_size": 4 / 255, "steps": 1},
           "eval_attack": {"eps": 8 / 255, "step_size": 4 / 255, "steps": 2}}  # fmt: skip
    monkeypatch.setitem(exps["adversarial_cifar10"].configs, "full", adv)
    out = tmp_path / "out"
    mod.run_cli(mod.PAPER, mod.EXPERIMENTS, mod.CLAIMS, derived=mod.DERIVED, figures=mod.figures,
                argv=["--scale", "full", "--seeds", "0", "--out", str(out), "--quiet", "--workers", "1",
                      "--device", "cpu"], package_dir=REPRODUCE.parent)  # fmt: skip
    result = json.loads((out / "result.json").read_text())
    m = result["metrics"]
    for key in ("clean_cifar10/acc_tau1", "clean_cifar10/acc_tau2", "adversarial_cifar10/acs_clean",
                "adversarial_cifar10/trades_robust", "adversarial_cifar10/pgdat_robust_margin",
                "adv_full/clean_acs_minus_trades"):  # fmt: skip
        v = m[key]["per_seed"]["0"]
        assert v is not None and np.isfinite(v), key
    assert 0 <= m["adversarial_cifar10/acs_robust"]["per_seed"]["0"] <= 1
    verdicts = {c["id"]: c["verdict"] for c in result["claims"]}
    assert verdicts["bound-holds"] == "holds"
    assert (out / "accuracy_vs_tau.png").exists() and (out / "adversarial.png").exists()
