"""--scale full end to end on a tiny CUB-200-2011-layout folder and a tiny random torchvision-format
ResNet-50 state dict, both written by the test (nothing is downloaded)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from metrix.full import (
    ResNet50Embedder,
    eval_transform,
    load_cub,
    random_resized_crop_box,
    run_full,
    torchvision_to_xentlab,
    xentlab_to_torchvision,
)
from PIL import Image

from xentlab.models.resnet_bottleneck import build_bottleneck_resnet
from xentlab.repro.local_data import MissingLocalData
from xentlab.testing.reproduce_module import load_reproduce

N_CLASSES, PER_CLASS, WIDTH = 4, 4, 4


def _torchvision_state(width: int, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = build_bottleneck_resnet(50, base_width=width, num_classes=1000)
    return {xentlab_to_torchvision(k): v for k, v in net.state_dict().items()}


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    root = tmp_path_factory.mktemp("cub")
    cub = root / "CUB_200_2011"
    rng = np.random.default_rng(0)
    images, labels, classes = [], [], []
    for c in range(1, N_CLASSES + 1):
        name = f"{c:03d}.Bird_{c}"
        classes.append(f"{c} {name}")
        (cub / "images" / name).mkdir(parents=True)
        for j in range(PER_CLASS):
            rel = f"{name}/Bird_{c}_{j}.jpg"
            # class-coloured noise of varied size and aspect ratio (one greyscale image, as in CUB)
            h, w = int(rng.integers(30, 50)), int(rng.integers(30, 60))
            px = np.clip(rng.normal(60 * c, 40, (h, w, 3)), 0, 255).astype(np.uint8)
            img = Image.fromarray(px).convert("L" if (c, j) == (1, 0) else "RGB")
            img.save(cub / "images" / rel)
            images.append(f"{len(images) + 1} {rel}")
            labels.append(f"{len(images)} {c}")
    (cub / "images" / classes[0].split()[1] / "._Bird_1_0.jpg").write_bytes(b"")  # a macOS fork, skipped
    images.append(f"{len(images) + 1} {classes[0].split()[1]}/._Bird_1_0.jpg")
    labels.append(f"{len(images)} 1")
    for fname, rows in (("images.txt", images), ("image_class_labels.txt", labels), ("classes.txt", classes)):
        (cub / fname).write_text("\n".join(rows) + "\n")
    torch.save(_torchvision_state(WIDTH), root / "resnet50.pth")
    return root


def _ctx(tmp_path):
    return SimpleNamespace(
        device=torch.device("cpu"), scale="full", log=lambda **k: None, progress=lambda it, **k: it,
        unit_dir=tmp_path,
    )  # fmt: skip


def _cfg(local, mode="baseline", **over):
    repro = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    cfg = dict(repro.EXPERIMENTS[0].configs["full"])
    cfg.update(mode=mode, data_root=str(local), pretrained=str(local / "resnet50.pth"), n_train_classes=2,
               image_size=32, resize=36, width=WIDTH, embedding_size=8, batch_size=4, epochs=2, warm=1,
               eval_batch=8, num_workers=0, recall_ks=(1, 2, 4))  # fmt: skip
    return {**cfg, **over}


def test_full_configs_follow_the_official_setting():
    repro = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    full = {e.name: e.configs["full"] for e in repro.EXPERIMENTS}
    assert {n: c["epochs"] for n, c in full.items()} == {"baseline": 60, "embed": 100, "feature": 100}
    for c in full.values():
        assert (c["batch_size"], c["lr"], c["weight_decay"], c["embedding_size"]) == (100, 1e-4, 1e-4, 512)
        assert (c["image_size"], c["n_train_classes"], c["warm"], c["bn_freeze"]) == (224, 100, 5, True)


@pytest.mark.parametrize("mode", ["baseline", "embed", "feature"])
def test_full_end_to_end(local, tmp_path, mode):
    out = run_full(_cfg(local, mode), seed=0, ctx=_ctx(tmp_path))
    assert (out["n_train"], out["n_test"]) == (8, 8)  # the ._ file is skipped
    assert all(0 <= out[f"r{k}"] <= 100 for k in (1, 2, 4)) and out["r1"] <= out["r2"] <= out["r4"]
    assert len(out["r1_curve"]) == 2 and all(math.isfinite(v) for v in out["loss_curve"])


def test_full_pretrained_trunk_is_loaded_and_bn_frozen(local):
    model = ResNet50Embedder(8, width=WIDTH)
    state = torch.load(local / "resnet50.pth", weights_only=True)
    model.load_torchvision(state)
    assert torch.equal(model.trunk[0][0].weight, state["conv1.weight"])
    assert torch.equal(model.trunk[1][3][2].bn3.running_var, state["layer4.2.bn3.running_var"])
    with pytest.raises(ValueError, match="torchvision resnet50"):
        ResNet50Embedder(8, width=8).load_torchvision(state)  # wrong width: shapes differ


def test_torchvision_key_names():
    # torchvision resnet50: 161 parameter tensors + 53 BatchNorms x 3 buffers = 320 state-dict entries
    tv = _torchvision_state(64)
    assert len(tv) == 320
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.downsample.0.weight", "layer3.5.bn2.bias",
            "layer4.2.conv3.weight", "fc.weight", "fc.bias"} <= set(tv)  # fmt: skip
    assert tv["layer4.0.downsample.0.weight"].shape == (2048, 1024, 1, 1)
    assert torchvision_to_xentlab("fc.weight") is None
    assert torchvision_to_xentlab("layer2.0.downsample.1.weight") == "stages.1.0.shortcut.1.weight"
    with pytest.raises(ValueError, match="torchvision ResNet key"):
        torchvision_to_xentlab("module.conv1.weight")


def test_full_names_the_missing_variables(local, tmp_path, monkeypatch):
    monkeypatch.delenv("METRIX_DATA_ROOT", raising=False)
    monkeypatch.delenv("METRIX_RESNET50_WEIGHTS", raising=False)
    with pytest.raises(MissingLocalData, match="METRIX_DATA_ROOT"):
        run_full(_cfg(local, data_root=None), seed=0, ctx=_ctx(tmp_path))
    with pytest.raises(MissingLocalData, match="METRIX_RESNET50_WEIGHTS"):
        run_full(_cfg(local, pretrained=None), seed=0, ctx=_ctx(tmp_path))
    with pytest.raises(MissingLocalData, match=r"image_class_labels\.txt"):
        load_cub(tmp_path)  # an empty folder: the error names the expected layout


def test_transforms_follow_torchvision():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x0, y0, cw, ch = random_resized_crop_box(50, 30, rng)
        assert 0 <= x0 and x0 + cw <= 50 and 0 <= y0 and y0 + ch <= 30 and cw > 0 and ch > 0
    # a uniform grey image of the ImageNet mean colour normalises to ~0 after resize + centre crop
    mean = tuple(int(round(255 * m)) for m in (0.485, 0.456, 0.406))
    x = eval_transform(Image.new("RGB", (60, 40), mean), resize=36, size=32)
    assert x.shape == (3, 32, 32) and x.abs().max() < 0.02


def test_full_scale_through_the_cli(local, tmp_path):
    """reproduce.py --scale full with the fixture's paths and sizes: result.json, claims, the figure."""
    import json

    from xentlab.testing.smoke import validate_result

    repro = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    for e in repro.EXPERIMENTS:
        e.configs["full"].update({k: v for k, v in _cfg(local).items() if k != "mode"})
    repro.run_cli(repro.PAPER, repro.EXPERIMENTS, repro.CLAIMS, derived=repro.DERIVED, figures=repro.figures,
                  default_seeds={"full": [0]}, package_dir=Path(__file__).parents[1],
                  argv=["--scale", "full", "--out", str(tmp_path), "--quiet", "--device", "cpu"])  # fmt: skip
    result = json.loads((tmp_path / "result.json").read_text())
    validate_result(result)
    assert {c["id"] for c in result["claims"]} == {"metrix-embed-r1", "metrix-feature-r1"}
    assert (tmp_path / "recall.png").is_file() and "feature/r8" not in result["metrics"]  # ks (1, 2, 4) here
