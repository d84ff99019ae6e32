import json
from pathlib import Path

import numpy as np
import pytest
import torch
from makd.experiment import RunConfig, load_aspect_json, run
from makd.oracle import (
    NUISANCE_QUESTIONS,
    NUM_CLASSES,
    QUESTIONS,
    OracleConfig,
    class_attributes,
    make_aspect_data,
)

from xentlab.testing import load_reproduce, run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"


def test_oracle_targets_and_nuisances():
    cfg = OracleConfig(n_per_class=6, image_size=16)
    d = make_aspect_data(cfg, seed=0)
    n = 6 * NUM_CLASSES
    assert d.images.x.shape == (n, 3, 16, 16) and d.targets.shape == (n, len(QUESTIONS))
    assert torch.bincount(d.images.y).tolist() == [6] * NUM_CLASSES
    assert 0 <= d.targets.min() and d.targets.max() <= 1
    # deterministic in the seed
    assert torch.equal(make_aspect_data(cfg, seed=0).targets, d.targets)
    # class aspects are a function of the class; nuisance margins vary within a class
    k = len(QUESTIONS) - len(NUISANCE_QUESTIONS)
    for c in range(NUM_CLASSES):
        m = d.margins[d.images.y == c]
        assert torch.all(m[:, :k] == m[0, :k])
        assert (m[:, k:].std(0) > 0.1).all()
    # noisy oracle: about cfg.flip of the answers disagree in sign with the noise-free margin
    wrong = ((d.targets > 0.5) != (d.margins > 0)).float()[d.margins.abs() > 0.5].mean().item()
    assert 0.05 < wrong < 0.25
    assert class_attributes(0) == ("circle", "solid", False)
    assert class_attributes(NUM_CLASSES - 1) == ("cross", "outline", True)


def _write_png(path: Path, rgb: tuple[int, int, int]) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), rgb, dtype=np.uint8)).save(path)


def _fixture(tmp_path: Path) -> tuple[Path, Path, Path]:
    table = {}
    for split in ("train", "test"):
        for c, rgb in enumerate([(250, 10, 10), (10, 10, 250)]):
            for i in range(3):
                stem = f"img_{split}_{i}_{c}_x"  # the authors' names carry the label at split('_')[-2]
                _write_png(tmp_path / split / f"class{c}" / f"{stem}.png", rgb)
                if split == "train":
                    table[stem] = [float(c == 0), 0.25, float(c == 1)]
    (tmp_path / "aspects.json").write_text(json.dumps(table))
    return tmp_path / "train", tmp_path / "test", tmp_path / "aspects.json"


def test_full_scale_folder_end_to_end(tmp_path, monkeypatch):
    train, test, aspects = _fixture(tmp_path)
    monkeypatch.setenv("MAKD_TRAIN_ROOT", str(train))
    monkeypatch.setenv("MAKD_TEST_ROOT", str(test))
    monkeypatch.setenv("MAKD_ASPECT_JSON", str(aspects))
    mod = load_reproduce(REPRO)
    cfg = {**mod.EXPERIMENTS[1].configs["full"], "image_size": 8, "widths": (4,), "epochs": 2}

    class Ctx:
        device, log, progress = "cpu", None, None

    out = mod.train_arm(cfg, 0, Ctx())
    assert out["num_aspects"] == 3 and 0.0 <= out["test_acc"] <= 1.0
    # a red/blue toy: the student learns it
    cfg["epochs"] = 30
    assert mod.train_arm(cfg, 0, Ctx())["test_acc"] == 1.0


def test_aspect_json_errors(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps({"a": [0.2, 0.3], "b": [1.5, 0.0]}))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_aspect_json(p, ["a", "b"])
    with pytest.raises(KeyError, match="no entry"):
        load_aspect_json(p, ["a", "zzz"])
    assert load_aspect_json(p, ["a"]).shape == (1, 2)


def test_same_init_across_arms_and_errors():
    cfg = dict(n_train_per_class=2, n_val_per_class=1, n_test_per_class=1, widths=(4,), epochs=1)
    a = run(RunConfig(arm="ce", **cfg), 3)
    b = run(RunConfig(arm="ce", **cfg), 3)
    assert a["test_acc"] == b["test_acc"] and a["curve"] == b["curve"]  # deterministic
    with pytest.raises(ValueError, match="arm must be"):
        RunConfig(arm="kd")


def test_smoke(tmp_path):
    result = run_smoke(REPRO, tmp_path)
    assert result["package"] == "makd"
