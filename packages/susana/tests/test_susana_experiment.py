"""Episodes, shared init across arms, the smoke run, and the full-scale folder path on a tiny fixture."""

from pathlib import Path

import numpy as np
import pytest
import torch
from susana.experiment import RunConfig, conv4, load_splits, run, sample_episode

from xentlab.repro.local_data import MissingLocalData
from xentlab.testing import load_reproduce, run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "xentlab-cache"))


def test_episode_shapes_and_disjoint_support_query():
    by = [np.arange(c * 10, c * 10 + 10) for c in range(7)]
    s, ys, q, yq = sample_episode(by, 5, 2, 3, np.random.default_rng(0))
    assert len(s) == 10 and len(q) == 15 and not set(s) & set(q)
    assert (np.bincount(ys) == 2).all() and (np.bincount(yq) == 3).all()
    assert all(s[i] // 10 == s[j] // 10 for i in range(10) for j in range(10) if ys[i] == ys[j])  # same class
    with pytest.raises(ValueError, match="need >= 5 classes"):
        sample_episode(by[:3], 5, 1, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="shot \\+ query"):
        sample_episode(by, 5, 6, 6, np.random.default_rng(0))


def test_conv4_embedding_size():
    assert conv4(8)(torch.zeros(2, 3, 16, 16)).shape == (2, 8)


def _write_folder(root: Path, n_classes=6, n_img=8, size=12):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for c in range(n_classes):
            d = root / split / f"n{c:03d}"
            d.mkdir(parents=True)
            for i in range(n_img):
                arr = (rng.random((size, size, 3)) * 60 + c * 30).astype(np.uint8)
                Image.fromarray(arr).save(d / f"{i}.png")


def test_full_scale_folder_end_to_end(tmp_path, monkeypatch):
    _write_folder(tmp_path / "mini")
    monkeypatch.setenv("SUSANA_DATA_ROOT", str(tmp_path / "mini"))
    mod = load_reproduce(REPRO)
    tiny = {"image_size": 16, "channels": 4, "episodes": 2, "val_every": 1, "val_episodes": 2,
            "test_episodes": 3, "test_query": 2, "n_query": 2, "train_shot": 3}  # fmt: skip
    cfg = {**mod.EXPERIMENTS[1].configs["full"], **tiny}
    out = run(RunConfig(**{**cfg, "data_root": str(tmp_path / "mini")}), 0)
    assert 0 <= out["test_1shot"] <= 100 and np.isfinite(out["test_5shot_ci95"])
    icnn_cfg = {**mod.EXPERIMENTS[2].configs["full"], **tiny}
    assert icnn_cfg["icnn"] and not icnn_cfg.get("triplet")
    out = run(RunConfig(**{**icnn_cfg, "data_root": str(tmp_path / "mini")}), 0)  # 3 shot + 2 query: ipc 5
    assert np.isfinite(out["test_1shot"]) and np.isfinite(out["curve"][-1]["loss"])
    monkeypatch.delenv("SUSANA_DATA_ROOT")
    with pytest.raises(MissingLocalData, match="SUSANA_DATA_ROOT"):
        mod.train_arm(cfg, 0, None)  # the data path is resolved before anything else
    with pytest.raises(FileNotFoundError, match="train/, val/ and test/"):
        run(RunConfig(**{**cfg, "data_root": str(tmp_path)}), 0)


def test_arms_share_init_and_are_deterministic():
    cfg = dict(
        n_per_class=20, episodes=3, val_every=3, val_episodes=3, test_episodes=4, channels=4, test_query=5
    )
    a = run(RunConfig(**cfg), 0)
    b = run(RunConfig(**cfg), 0)
    assert a["test_1shot"] == b["test_1shot"] and a["curve"] == b["curve"]
    torch.manual_seed(0)
    w1 = conv4(4)[0].weight.clone()
    torch.manual_seed(0)
    assert torch.equal(w1, conv4(4)[0].weight)


def test_smoke(tmp_path):
    result = run_smoke(REPRO, tmp_path)
    assert "gain/triplet_vs_ce_1shot" in str(result) and "gain/icnn_vs_ce_1shot" in str(result)


def test_committed_cpu_units_match_the_current_protocol():
    # a committed unit whose key differs would be recomputed; one whose key matched a changed protocol
    # would silently resume stale numbers, hence the experiment version bump with the logits fix
    import json

    from xentlab.repro.units import unit_key

    mod = load_reproduce(REPRO)
    assert all(exp.version == "5" for exp in mod.EXPERIMENTS)
    for exp in mod.EXPERIMENTS:
        for seed in mod.CPU_SEEDS:
            path = REPRO.parent / "results" / "cpu" / "units" / exp.name / f"seed{seed}.json"
            assert path.exists(), f"committed cpu unit missing: {path}"
            assert json.loads(path.read_text())["key"] == unit_key(exp, exp.config("cpu"), seed, scale="cpu")


def test_shapes_splits_do_not_repeat_each_others_images():
    # Guard (second audit of metrix, which had this defect): the three class splits are rendered with one generator
    # seed, so two splits with equal image counts would get identical per-image draws (pose, colours, texture,
    # background, noise: only the glyph differs), linking test class k to training class k. susana is free of it only
    # because its splits differ in size (46 / 12 / 16 classes); this fails if a config makes two sizes equal.
    splits = load_splits(RunConfig(n_per_class=30, image_size=16))  # the cpu scale's data settings
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            xa, xb = splits[a][0], splits[b][0]
            n = min(len(xa), len(xb))
            same_corner = (xa[:n, :, 0, 0] == xb[:n, :, 0, 0]).all(1).float().mean().item()
            assert same_corner < 0.05, (
                f"{same_corner:.0%} of {b} images share the {a} image's corner at the same index"
            )
