"""--scale full: the official settings, the data-root errors, and the whole full pipeline end to end on
tiny MNIST / CIFAR-10 fixtures written here (a few images, 1 epoch; never the network)."""

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from harmonic import vision
from harmonic.vision import (
    ENV_VAR,
    build_model,
    load_vision,
    lr_milestones,
    make_optimizer,
    official_config,
    run_vision,
)

from xentlab.repro import Experiment, run_cli
from xentlab.testing import load_reproduce
from xentlab.testing.fixtures import write_cifar

REPRO = Path(__file__).parents[1] / "reproduce.py"


def _reproduce_module():
    return load_reproduce(REPRO)


def _write_cifar10(root: Path) -> None:
    write_cifar(root, "cifar10", n_train=20, n_test=6, labels="cycle")


def _write_mnist(root: Path, n_train: int = 12, n_test: int = 6) -> None:
    """idx files (gzipped) as MNIST ships them: magic 0x00000803 / 0x00000801, big-endian sizes, uint8."""
    folder = root / "mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for stem, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (folder / f"{stem}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", n, 28, 28) + images.tobytes())
        )
        (folder / f"{stem}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", n) + labels.tobytes())
        )


def test_official_settings():
    mlp = official_config("cifar100", "mlp")
    assert (mlp["optimizer"], mlp["lr"], mlp["epochs"], mlp["batch_size"]) == ("adam", 3e-4, 150, 1024)
    assert mlp["scheduler"] == {"type": "step", "step_size": 50, "gamma": 0.5}
    assert (
        official_config("mnist", "cnn")["scheduler"] is None
        and official_config("mnist", "cnn")["epochs"] == 40
    )
    res = official_config("cifar10", "resnet50")
    assert (res["optimizer"], res["lr"], res["weight_decay"], res["epochs"], res["batch_size"]) == (
        "sgd", 0.1, 1e-4, 100, 512,
    )  # fmt: skip
    assert official_config("cifar100", "resnet50")["scheduler"]["milestones"] == [60, 100, 140]
    with pytest.raises(ValueError, match="unknown pair"):
        official_config("svhn", "mlp")


def test_missing_data_root_names_the_variable_and_files(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match=f"{ENV_VAR}.*cifar-10-batches-py/{{data_batch_1"):
        load_vision("cifar10", None)
    with pytest.raises(
        FileNotFoundError, match=f"mnist not found under .* \\({ENV_VAR}\\).*train-images-idx3"
    ):
        load_vision("mnist", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="cifar-100-python/{train, test}"):
        load_vision("cifar100", str(tmp_path))


@pytest.mark.parametrize(("dataset", "backbone"), [("cifar100", "mlp"), ("cifar10", "resnet50"),
                                                   ("cifar100", "resnet50"), ("mnist", "cnn")])  # fmt: skip
def test_lr_milestones_follow_the_official_torch_schedulers(dataset, backbone):
    # the lr of every epoch under the official StepLR / MultiStepLR (stepped once per epoch) equals
    # the lr fit_epochs applies from (milestones, gamma)
    cfg = official_config(dataset, backbone)
    opt = make_optimizer(torch.nn.Linear(2, 2), cfg)
    sched = cfg["scheduler"]
    torch_sched = None
    if sched and sched["type"] == "step":
        torch_sched = torch.optim.lr_scheduler.StepLR(opt, step_size=sched["step_size"], gamma=sched["gamma"])
    elif sched:
        torch_sched = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=sched["milestones"], gamma=sched["gamma"]
        )
    expected = []
    for _ in range(cfg["epochs"]):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradients: a no-op, but torch expects it before the scheduler's step
        if torch_sched is not None:
            torch_sched.step()
    milestones, gamma = lr_milestones(cfg)
    lr, ours = cfg["lr"], []
    for epoch in range(cfg["epochs"]):
        lr *= gamma if epoch in milestones else 1.0
        ours.append(lr)
    assert ours == pytest.approx(expected, rel=1e-12)


def test_backbones_shapes():
    torch.manual_seed(0)
    for backbone, (c, s) in (("mlp", (1, 28)), ("cnn", (3, 32)), ("resnet50", (3, 32))):
        model = build_model(backbone, "cosine", c, s, 10, 1.0).eval()
        logp = model(torch.randn(2, c, s, s))
        assert logp.shape == (2, 10) and torch.allclose(logp.exp().sum(1), torch.ones(2), atol=1e-5)
    assert build_model("resnet50", "ce", 1, 28, 10, 1.0).head.in_features == 2048


def test_run_vision_on_fixture_is_deterministic(tmp_path):
    _write_mnist(tmp_path)
    cfg = {"dataset": "mnist", "backbone": "mlp", "head": "euclidean", "n": 1.0, "data_root": str(tmp_path),
           **official_config("mnist", "mlp"), "epochs": 2, "batch_size": 5}  # fmt: skip
    a, b = run_vision(cfg, 0), run_vision(cfg, 0)
    assert a["acc"] == b["acc"] and a["norm_curve"] == b["norm_curve"] and len(a["norm_curve"]) == 3
    assert 0 <= a["acc"] <= 1 and a["s_per_epoch"] > 0 and -1 <= a["alignment"] <= 1


def test_full_scale_end_to_end_on_fixture(tmp_path, monkeypatch):
    """reproduce.py's full experiments (configs, unit function, derived metrics, claims, figure) on a
    CIFAR-10 fixture: CE / Euclidean / cosine heads on the CNN and (CE only) ResNet-50, 1 epoch."""
    data = tmp_path / "data"
    _write_cifar10(data)
    mod = _reproduce_module()
    names = ["cifar10-cnn-ce", "cifar10-cnn-euclidean", "cifar10-cnn-cosine", "cifar10-resnet50-ce"]
    tiny = []
    for exp in mod.EXPERIMENTS:
        if exp.name in names:
            cfg = {**exp.config("full"), "data_root": str(data), "epochs": 1, "batch_size": 8}
            tiny.append(Experiment(exp.name, exp.fn, {"full": cfg}))
    assert len(tiny) == 4
    out = tmp_path / "out"
    argv = ["--scale", "full", "--out", str(out), "--quiet", "--seeds", "0", "--workers", "1"]
    result = run_cli(mod.PAPER, tiny, mod.CLAIMS, derived=mod.DERIVED, figures=mod.figures, argv=argv)
    assert json.loads((out / "result.json").read_text())["scale"] == "full"
    m = result["metrics"]
    assert 0 <= m["cifar10-cnn-cosine/acc"]["mean"] <= 1 and m["cifar10-resnet50-ce/s_per_epoch"]["mean"] > 0
    assert m["full/cosine_pareto_all_pairs"]["mean"] in (0.0, 1.0)  # the cnn pair has ce/euclidean/cosine
    assert {c["id"] for c in result["claims"]} == {
        c.id for c in mod.CLAIMS if "full" in (c.scales or ("full",))
    }
    assert (out / "vision_heads.png").exists()


def test_run_vision_augments_raw_training_batches_then_normalises(tmp_path, monkeypatch):
    """The official pipeline is wired in: every training batch goes through augment_batch as raw [0, 1]
    images of the training set, one call per batch; the augmented run differs from the un-augmented one
    with the same seed and repeats itself exactly."""
    write_cifar(tmp_path, "cifar100", n_train=12, n_test=4, labels="cycle")
    cfg = {"dataset": "cifar100", "backbone": "cnn", "head": "cosine", "n": 1.0, "data_root": str(tmp_path),
           **official_config("cifar100", "resnet50"), "epochs": 2, "batch_size": 5}  # fmt: skip
    cfg["optimizer"], cfg["lr"] = "adam", 3e-4  # the CNN body, with the ResNet-50 pipeline of CIFAR-100
    raw = vision.load_vision("cifar100", str(tmp_path))[0].x
    seen, real = [], vision.augment_batch

    def spy(x, aug, gen):
        seen.append(x.clone())
        return real(x, aug, gen)

    monkeypatch.setattr(vision, "augment_batch", spy)
    a = run_vision(cfg, 0)
    assert len(seen) == 2 * 3  # 2 epochs x ceil(12 / 5) batches
    for xb in seen:  # raw images of the training set (not yet normalised)
        assert all(any(torch.equal(img, r) for r in raw) for img in xb)
    monkeypatch.setattr(vision, "augment_batch", real)
    assert run_vision(cfg, 0)["norm_curve"] == a["norm_curve"]
    assert run_vision({**cfg, "augment": None}, 0)["norm_curve"] != a["norm_curve"]


def test_full_scale_cifar100_resnet50_runs_one_augmented_epoch(tmp_path):
    """The official CIFAR-100 ResNet-50 unit (flip, crop, rotation 15, colour jitter, CIFAR-100 mean/std) on
    a tiny fixture: one epoch of one batch, finite metrics."""
    write_cifar(tmp_path, "cifar100", n_train=8, n_test=4, labels="cycle")
    mod = _reproduce_module()
    exp = next(e for e in mod.EXPERIMENTS if e.name == "cifar100-resnet50-cosine")
    cfg = {**exp.config("full"), "data_root": str(tmp_path), "epochs": 1, "batch_size": 8}
    assert cfg["augment"]["color_jitter"] == [0.2, 0.2, 0.2, 0.1] and exp.version == "3"
    out = run_vision(cfg, 0)
    assert 0 <= out["acc"] <= 1 and len(out["norm_curve"]) == 2 and np.isfinite(out["norm_curve"]).all()
    assert -1 <= out["alignment"] <= 1


def test_full_configs_drop_the_last_partial_batch(tmp_path, monkeypatch):
    """The official train loader has drop_last=True (data/data_loaders.py::get_loaders): every full config
    asks for it (the cpu configs do not use run_vision and have no such key), and run_vision then trains on
    floor(n / batch) batches per epoch: 12 images, batch 5 -> 2 batches (10 images) instead of 3."""
    mod = _reproduce_module()
    full = [e for e in mod.EXPERIMENTS if e.config("full") is not None and "dataset" in e.config("full")]
    assert len(full) == 3 * 3 * len(mod.HEADS) and all(
        e.config("full")["drop_last"] is True and e.version == "3" for e in full
    )
    for exp in mod.EXPERIMENTS:
        for scale in ("smoke", "cpu"):
            cfg = exp.config(scale)
            assert cfg is None or "drop_last" not in cfg
    write_cifar(tmp_path, "cifar100", n_train=12, n_test=4, labels="cycle")
    cfg = {"dataset": "cifar100", "backbone": "cnn", "head": "cosine", "n": 1.0, "data_root": str(tmp_path),
           **official_config("cifar100", "resnet50"), "epochs": 2, "batch_size": 5}  # fmt: skip
    cfg["optimizer"], cfg["lr"] = "adam", 3e-4
    sizes, real = [], vision.augment_batch

    def spy(x, aug, gen):
        sizes.append(len(x))
        return real(x, aug, gen)

    monkeypatch.setattr(vision, "augment_batch", spy)
    run_vision({**cfg, "drop_last": True}, 0)
    assert sizes == [5, 5, 5, 5]  # 2 epochs x 2 full batches
    sizes.clear()
    run_vision(cfg, 0)
    assert sizes == [5, 5, 2, 5, 5, 2]  # without the key: the partial batch of 2 is kept
