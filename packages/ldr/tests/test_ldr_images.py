"""--scale full (CIFAR-100) on a tiny CIFAR-100-format fixture written here (never the network): data-root
errors, the official split and augmentation, and reproduce.py --scale full end to end."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ldr.images import (
    DATA_ENV,
    crop_flip_resize,
    kfold_split,
    load_image_dataset,
    normalize,
    resolve_data_root,
    topk_accuracy,
)

from xentlab.testing import load_reproduce
from xentlab.testing.fixtures import write_cifar

REPRODUCE = Path(__file__).parents[1] / "reproduce.py"


def write_cifar100(root: Path, n_train: int = 25, n_test: int = 8) -> Path:
    return write_cifar(root, "cifar100", n_train=n_train, n_test=n_test)


def write_k49(root: Path, n_train: int = 30, n_test: int = 10) -> Path:
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        np.savez(root / f"k49-{split}-imgs.npz", rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        np.savez(root / f"k49-{split}-labels.npz", rng.integers(0, 49, size=n))
    return root


def test_missing_root_and_files_are_clear(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=DATA_ENV) as e:
        resolve_data_root({"data_root": None})
    assert "cifar-100-python" in str(e.value)
    with pytest.raises(FileNotFoundError, match="cifar-100-python") as e:
        load_image_dataset("cifar100", tmp_path)
    assert DATA_ENV in str(e.value)
    with pytest.raises(FileNotFoundError, match="k49-train-imgs.npz") as e:
        load_image_dataset("k49", tmp_path)
    assert DATA_ENV in str(e.value)


def test_balanced_accuracy_by_hand():
    # labels [0, 0, 0, 1]; an identity "model" on one-hot-ish scores predicts [0, 0, 1, 1]:
    # plain accuracy 3/4; per class: class 0 2/3, class 1 1/1 -> balanced (2/3 + 1) / 2 = 5/6
    scores = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 0, 1])
    model = torch.nn.Identity()
    assert topk_accuracy(model, scores, y) == pytest.approx(0.75)
    assert topk_accuracy(model, scores, y, balanced=True) == pytest.approx(5 / 6)
    assert topk_accuracy(model, scores, y, k=2, balanced=True) == pytest.approx(1.0)


def test_kfold_split_matches_sklearn():
    from sklearn.model_selection import KFold

    for n in (10, 23):
        for fold, (tr, va) in enumerate(KFold(n_splits=5).split(np.zeros((n, 1)))):
            mine_tr, mine_va = kfold_split(n, 5, fold)
            assert mine_tr.tolist() == tr.tolist() and mine_va.tolist() == va.tolist()
    with pytest.raises(ValueError, match="fold must be"):
        kfold_split(10, 5, 5)


def test_crop_flip_resize():
    x = torch.rand(6, 3, 32, 32)
    out = crop_flip_resize(x, 30, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # crop = full size: every image is itself or its mirror image
    same = crop_flip_resize(x, 32, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(same[i], x[i]) or torch.equal(same[i], x[i].flip(-1)) for i in range(6))
    # a constant image stays constant under crop + bilinear resize (weights sum to one)
    const = torch.full((2, 3, 32, 32), 0.25)
    torch.testing.assert_close(crop_flip_resize(const, 30), const)
    with pytest.raises(ValueError, match="crop must be"):
        crop_flip_resize(x, 40)


def test_normalize_uses_the_official_constants():
    x = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    torch.testing.assert_close(normalize(x), torch.zeros(1, 3, 2, 2))


def test_full_scale_end_to_end_on_fixture(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(write_cifar100(tmp_path / "data")))
    write_k49(tmp_path / "data" / "k49")
    mod = load_reproduce(REPRODUCE)
    tiny = {"width": 4, "epochs": 1, "batch_size": 8, "max_test": 8, "milestones": []}
    for e in mod.EXPERIMENTS:
        keep = e.name in ("cifar100_clean", "cifar100_uniform0.6", "k49_classdep0.3")
        monkeypatch.setitem(e.configs, "full", {**e.configs["full"], **tiny} if keep else None)
    out = tmp_path / "out"
    mod.run_cli(mod.PAPER, mod.EXPERIMENTS, mod.CLAIMS, derived=mod.DERIVED, figures=mod.figures,
                argv=["--scale", "full", "--seeds", "0", "--out", str(out), "--quiet", "--workers", "1",
                      "--device", "cpu"], package_dir=REPRODUCE.parent)  # fmt: skip
    result = json.loads((out / "result.json").read_text())
    m = result["metrics"]
    for loss in ("ce", "gce", "sce", "ldr", "aldr"):
        for key in (f"cifar100_uniform0.6/acc_{loss}", f"cifar100_clean/top5_{loss}"):
            v = m[key]["per_seed"]["0"]
            assert v is not None and 0 <= v <= 1, key
    assert np.isfinite(m["gap/aldr_minus_ce_cifar100_uniform0.6"]["per_seed"]["0"])
    for key in (
        "k49_classdep0.3/acc_aldr",
        "k49_classdep0.3/plain_acc_ce",
        "gap/ldr_minus_ce_k49_classdep0.3",
    ):
        assert np.isfinite(m[key]["per_seed"]["0"]), key
    ids = {c["id"] for c in result["claims"]}
    assert "aldr-beats-ce-uniform0.6-cifar100" in ids
    assert (out / "accuracy_by_noise.png").exists()
