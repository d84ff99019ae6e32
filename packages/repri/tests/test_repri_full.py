"""--scale full end to end on a tiny fake PASCAL-5i (VOC layout, official split list) and a tiny random PSPNet
checkpoint in the official format, all written by the test (nothing is downloaded); plus the official resize
arithmetic, the episode pool rules and the missing-variable error."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from xentlab.repro.local_data import MissingLocalData
from xentlab.testing.reproduce_module import load_reproduce

WIDTH, BOTTLENECK = 4, 8
CKPT_REL = "model_ckpt/pascal/split=0/model/pspnet_resnet50/smoothing=True/mixup=False/best.pth"


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from PIL import Image
    from repri.pspnet import PSPNet

    root = tmp_path_factory.mktemp("voc")
    data = root / "data" / "pascal"
    (data / "JPEGImages").mkdir(parents=True)
    (data / "SegmentationClassAug").mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(15):
        h, w = (30, 40) if i % 2 else (41, 27)
        mask = np.zeros((h, w), np.uint8)
        # fold-0 novel classes 1-5: three per image (none in the last one), a base class (7) and a void line
        novel = [] if i == 14 else [1 + (i + k) % 5 for k in range(3)]
        for k, c in enumerate([*novel, 7]):
            mask[2 + 6 * k : 8 + 6 * k, 3:20] = c  # 6 x 17 = 102 pixels each
        mask[-1, :] = 255
        name = f"2008_{i:06d}"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            data / "JPEGImages" / f"{name}.jpg"
        )
        Image.fromarray(mask, mode="L").save(data / "SegmentationClassAug" / f"{name}.png")
        lines.append(f"JPEGImages/{name}.jpg SegmentationClassAug/{name}.png")
    (root / "lists" / "pascal").mkdir(parents=True)
    (root / "lists" / "pascal" / "val.txt").write_text("\n".join(lines) + "\n")
    torch.manual_seed(0)
    net = PSPNet(16, width=WIDTH, bottleneck_dim=BOTTLENECK)
    for m in net.modules():  # non-trivial BatchNorm statistics, so a wrong key mapping would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    ckpt = root / CKPT_REL
    ckpt.parent.mkdir(parents=True)
    state = {f"module.{k}": v for k, v in net.state_dict().items()}  # DistributedDataParallel keys
    torch.save({"epoch": 50, "state_dict": state, "optimizer": {}}, ckpt)
    return root


def _ctx(tmp_path):
    return SimpleNamespace(device=torch.device("cpu"), scale="full", log=lambda **k: None,
                           progress=lambda it, **k: it, unit_dir=tmp_path)  # fmt: skip


def _cfg(local, **over):
    full = load_reproduce(Path(__file__).parents[1] / "reproduce.py").FULL
    tiny = dict(width=WIDTH, bottleneck_dim=BOTTLENECK, image_size=33, min_pixels=30, episodes=6, n_runs=2,
                tasks_per_batch=4, feature_batch=8, adapt_iter=5, oracle_official_iter=6)  # fmt: skip
    paths = dict(data_root=str(local / "data" / "pascal"), lists=str(local / "lists" / "pascal"),
                 checkpoints=str(local))  # fmt: skip
    return {**full, **tiny, **paths, **over}


def test_official_full_config():
    full = load_reproduce(Path(__file__).parents[1] / "reproduce.py").FULL
    assert (full["image_size"], full["episodes"], full["n_runs"], full["min_pixels"]) == (417, 1000, 5, 2048)
    assert (full["adapt_iter"], tuple(full["shots"]), full["bottleneck_dim"]) == (50, (1, 5), 512)


def test_official_resize_arithmetic():
    from repri.full import find_new_hw

    # 375 x 500 (a typical VOC image): 417 * 375 / 500 = 312.75 -> 312 (a multiple of 8), 417 -> 416
    assert find_new_hw(375, 500, 417) == (312, 416)
    assert find_new_hw(500, 333, 417) == (416, 272)  # 333 * 417 / 500 = 277.7 -> 277 -> 272


def test_resized_pair_is_padded_as_official(local):
    from repri.full import IMAGENET_MEAN, IMAGENET_STD, load_pair

    data = local / "data" / "pascal"
    img, mask = load_pair(
        data / "JPEGImages/2008_000000.jpg", data / "SegmentationClassAug/2008_000000.png", 33
    )
    # 41 x 27 -> longest side 33, other int(27 * 33 / 41) = 21, both floored to a multiple of 8: 32 x 16
    assert img.shape == (3, 33, 33) and mask.shape == (33, 33)
    assert (mask[32:] == 255).all() and (mask[:, 16:] == 255).all() and (mask[:32, :16] != 255).any()
    pad = (torch.zeros(3) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(img[:, 32, 20], pad)


def test_episode_pool_follows_make_dataset(local):
    from repri.full import build_pool, novel_classes, read_list, sample_episodes

    pairs = read_list(local / "lists" / "pascal", local / "data" / "pascal")
    pool = build_pool(pairs, novel_classes(0), min_pixels=30)
    assert len(pool.pairs) == 14  # the image without a novel class is not in the pool
    q, s, c, nxt = sample_episodes(pool, 20, 5, 10, np.random.default_rng(0))
    assert q.tolist() == [(10 + k) % 14 for k in range(20)] and nxt == 30  # list order, cycling
    for qi, si, ci in zip(q, s, c):
        assert ci in pool.present[qi] and qi not in si and len(set(si)) == 5
        assert all(ci in pool.present[j] for j in si)


def test_checkpoint_loads_strictly(local, tmp_path):
    from repri.pspnet import PSPNet, load_official_checkpoint

    net = PSPNet(16, width=WIDTH, bottleneck_dim=BOTTLENECK)
    assert load_official_checkpoint(net, local / CKPT_REL)["epoch"] == 50
    blob = torch.load(local / CKPT_REL, weights_only=True)
    assert torch.equal(
        net.ppm.features[3][2].running_var, blob["state_dict"]["module.ppm.features.3.2.running_var"]
    )
    del blob["state_dict"]["module.layer3.0.downsample.1.weight"]
    torch.save(blob, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="layer3.0.downsample.1.weight"):
        load_official_checkpoint(PSPNet(16, width=WIDTH, bottleneck_dim=BOTTLENECK), tmp_path / "broken.pth")


def test_full_end_to_end(local, tmp_path):
    from repri.full import run_full

    out = run_full(_cfg(local), seed=4, ctx=_ctx(tmp_path))  # seed 4 -> fold 0
    assert out["fold"] == 0 and out["n_pool_images"] == 14 and out["checkpoint_epoch"] == 50
    for shots in (1, 5):
        for arm in ("init", "ce", "ce_h", "repri", "oracle", "oracle_official"):
            assert 0.0 <= out[f"miou_{shots}shot_{arm}"] <= 100.0
            assert len(out[f"miou_runs_{shots}shot"][arm]) == 2
        assert math.isfinite(out[f"pi_err_{shots}shot_final"])
    # a {fold} template path gives the same result
    again = run_full(
        _cfg(local, checkpoints=str(local / CKPT_REL).replace("split=0", "split={fold}")), 4, _ctx(tmp_path)
    )
    assert again["miou_5shot_repri"] == out["miou_5shot_repri"]


def test_full_names_the_missing_variable(local, tmp_path, monkeypatch):
    from repri.full import run_full

    for key, env in (
        ("data_root", "REPRI_DATA_ROOT"),
        ("lists", "REPRI_LISTS"),
        ("checkpoints", "REPRI_CHECKPOINTS"),
    ):
        monkeypatch.delenv(env, raising=False)
        with pytest.raises(MissingLocalData, match=env):
            run_full(_cfg(local, **{key: None}), seed=0, ctx=_ctx(tmp_path))
    with pytest.raises(MissingLocalData, match="fold 1"):  # no checkpoint for fold 1 in the fixture
        run_full(_cfg(local), seed=1, ctx=_ctx(tmp_path))
