"""--scale full end to end on fake CIFAR-10 batches and a tiny random MoCo checkpoint in the official key format,
both written by the test (nothing is downloaded), plus the checkpoint mapping and the missing-variable error."""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from xentlab.models.resnet_bottleneck import build_bottleneck_resnet
from xentlab.repro.local_data import MissingLocalData
from xentlab.testing.reproduce_module import load_reproduce

WIDTH = 4  # a ResNet-50 of base width 4 (128-d feature) instead of 64 (2048-d)


def _to_torchvision(key: str) -> str:
    """xentlab bottleneck-ResNet key -> torchvision key (the inverse of full.torchvision_to_xentlab)."""
    key = key.replace("stem.0.", "conv1.", 1).replace("stem.1.", "bn1.", 1)
    m = re.fullmatch(r"stages\.(\d)\.(\d+)\.(.*)", key)
    if m:
        key = f"layer{int(m.group(1)) + 1}.{m.group(2)}.{m.group(3).replace('shortcut.', 'downsample.')}"
    return key


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    root = tmp_path_factory.mktemp("core_full")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for b, (name, n) in enumerate([*((f"data_batch_{i}", 6) for i in range(1, 6)), ("test_batch", 10)]):
        labels = [(6 * b + i) % 10 for i in range(n)]  # 3 train images per class in all, 1 test image
        blob = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": labels}
        (folder / name).write_bytes(pickle.dumps(blob))
    # the official MoCo release: {'state_dict': {'module.encoder_q.*', 'module.encoder_k.*', 'module.queue', ...}}
    torch.manual_seed(0)
    net = build_bottleneck_resnet(50, base_width=WIDTH, num_classes=128)
    state = {}
    for k, v in net.state_dict().items():
        tv = "fc.0." + k[5:] if k.startswith("head.") else _to_torchvision(k)
        state[f"module.encoder_q.{tv}"] = v
        state[f"module.encoder_k.{tv}"] = torch.zeros_like(v)
    state["module.queue"] = torch.randn(128, 16)
    state["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
    torch.save({"epoch": 800, "arch": "resnet50", "state_dict": state}, root / "moco_v2.pth.tar")
    return root


def _ctx(tmp_path):
    return SimpleNamespace(device=torch.device("cpu"), scale="full", log=lambda **k: None,
                           progress=lambda it, **k: it, unit_dir=tmp_path)  # fmt: skip


def _cfg(local, **over):
    full = load_reproduce(Path(__file__).parents[1] / "reproduce.py").FULL
    tiny = dict(width=WIDTH, n_val_per_class=1, epochs=2, batch_size=8, accumulate_steps=2, contrast_dim=8,
                resize=36, crop=32, test_resize=32, eval_batch=16, num_workers=0)  # fmt: skip
    paths = dict(data_root=str(local), checkpoint=str(local / "moco_v2.pth.tar"))
    return {**full, **tiny, **paths, "arm": "core", **over}


def test_official_full_config():
    full = load_reproduce(Path(__file__).parents[1] / "reproduce.py").FULL
    assert (full["epochs"], full["batch_size"], full["accumulate_steps"], full["lr"]) == (100, 64, 4, 0.01)
    assert (full["eta"], full["alpha"], full["temperature"], full["contrast_dim"]) == (0.1, 1.0, 0.07, 256)


def test_moco_query_encoder_is_loaded(local):
    from core_tuning.full import load_moco_backbone

    blob = torch.load(local / "moco_v2.pth.tar", weights_only=True)["state_dict"]
    backbone = load_moco_backbone(local / "moco_v2.pth.tar", WIDTH)
    got = backbone.state_dict()
    assert torch.equal(
        got["stem.0.weight"], blob["module.encoder_q.conv1.weight"]
    )  # encoder_q, not encoder_k
    assert torch.equal(got["stages.3.0.shortcut.1.running_var"],
                       blob["module.encoder_q.layer4.0.downsample.1.running_var"])  # fmt: skip
    assert backbone.features(torch.rand(2, 3, 32, 32)).shape == (2, 32 * WIDTH)


def test_plain_torchvision_keys_load_and_missing_tensors_fail(local, tmp_path):
    from core_tuning.full import load_moco_backbone

    blob = torch.load(local / "moco_v2.pth.tar", weights_only=True)["state_dict"]
    plain = {k.removeprefix("module.encoder_q."): v for k, v in blob.items() if "encoder_q" in k}
    torch.save(plain, tmp_path / "pretrain_moco_v2.pkl")  # the authors' converted checkpoint
    load_moco_backbone(tmp_path / "pretrain_moco_v2.pkl", WIDTH)
    del plain["layer2.1.bn2.weight"]
    torch.save(plain, tmp_path / "broken.pkl")
    with pytest.raises(ValueError, match="layer2|stages.1.1.bn2"):
        load_moco_backbone(tmp_path / "broken.pkl", WIDTH)


def test_full_end_to_end(local, tmp_path):
    from core_tuning.full import run_full

    for arm in ("ce", "core"):
        out = run_full(_cfg(local, arm=arm), seed=0, ctx=_ctx(tmp_path))
        assert 0 <= out["test_acc"] <= 1 and 0 <= out["final_test_acc"] <= 1 and 1 <= out["best_epoch"] <= 2
        assert (out["n_train"], out["n_val"], out["n_test"]) == (20, 10, 10)
        assert all(math.isfinite(v) for v in out["curves"]["ce_loss"] + out["curves"]["con_loss"])
        assert (out["final_con_loss"] > 0) == (arm == "core")
        # cosine annealing per epoch from lr 0.01 over 2 epochs: 0.01, then 0.005
        assert out["curves"]["lr"] == pytest.approx([0.01, 0.005])


def test_full_names_the_missing_variable(local, tmp_path, monkeypatch):
    from core_tuning.full import run_full

    monkeypatch.delenv("CORE_TUNING_MOCO_CHECKPOINT", raising=False)
    with pytest.raises(MissingLocalData, match="CORE_TUNING_MOCO_CHECKPOINT"):
        run_full(_cfg(local, checkpoint=None), seed=0, ctx=_ctx(tmp_path))
    monkeypatch.delenv("CORE_TUNING_DATA_ROOT", raising=False)
    with pytest.raises(MissingLocalData, match="CORE_TUNING_DATA_ROOT.*cifar-10-batches-py"):
        run_full(_cfg(local, data_root=None), seed=0, ctx=_ctx(tmp_path))
