"""--scale full end to end on a tiny random CLIP + a 3-class x 4-image domain folder the test writes."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from xentlab.repro.local_data import MissingLocalData
from xentlab.repro.spec import ReproError
from xentlab.testing.reproduce_module import load_reproduce

CLASSES = ["Alarm_Clock", "Bike", "Candles"]  # Office-Home style folder names


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from PIL import Image
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from xentlab.data.tokenizer import get_tokenizer

    root = tmp_path_factory.mktemp("tfup_full")
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / "office_home" / "Art" / name).mkdir(parents=True)
        for j in range(4):
            px = np.clip(rng.normal(70 * (c + 1), 30, (int(rng.integers(28, 44)), 36, 3)), 0, 255).astype(
                np.uint8
            )
            Image.fromarray(px).save(root / "office_home" / "Art" / name / f"{j}.jpg")
    prompts = {"alarm clock": ["a photo of an alarm clock", "a clock that rings"],
               "bike": ["a bike with two wheels"], "candles": ["lit candles", "wax candles on a table"]}  # fmt: skip
    (root / "prompts.json").write_text(json.dumps(prompts))
    texts = [p for v in prompts.values() for p in v] + ["a photo of a bike"]
    tok = get_tokenizer(texts * 8, vocab_size=300, include_pydoc=False, name="tfup-full-test")
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, eos_token_id=tok.eos_token_id),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=16),
        projection_dim=8,
    )  # fmt: skip
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(root / "clip")
    tok.save_pretrained(root / "clip")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        root / "clip"
    )
    return root


def _cfg(local, **over) -> dict:
    repro = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    cfg = dict(repro.EXPERIMENTS[0].configs["full"])
    cfg.update(clip=str(local / "clip"), target=str(local / "office_home" / "Art"), dataset="office_home",
               prompts=str(local / "prompts.json"), epochs=3, warmup_epochs=1, batch=5, eval_batch=8,
               num_workers=0)  # fmt: skip
    return {**cfg, **over}


def _ctx():
    return SimpleNamespace(device=torch.device("cpu"), scale="full", log=lambda **k: None)


def test_full_runs_end_to_end(local):
    from tfup.full import run_full

    out = run_full(_cfg(local), 0, _ctx())
    for arm in ("zero_shot", "tfup", "tfup_cosine", "tfup_random_cache", "tfup_conf_only", "tfup_t"):
        assert 0.0 <= out[arm] <= 1.0, arm
    # N = 12, C = 3: K = clamp(floor(0.3 * 12 / 3), 9, 16) = 9 (more than the pool holds per class)
    assert out["n_target"] == 12 and out["n_classes"] == 3 and out["cache_shots"] == 9
    assert len(out["tfup_t_curve"]) == 3 and len(out["conf_frac"]) == 2  # 1 warm-up + 2 main epochs
    assert out["settings"]["lr"] == 0.012 and out["settings"]["training_proportion"] == 0.75
    assert run_full(_cfg(local), 0, _ctx())["tfup_t"] == out["tfup_t"]  # deterministic per seed


def test_class_names_prompts_and_settings(local, tmp_path):
    from tfup.full import class_prompts, read_domain, settings

    paths, y, names = read_domain(local / "office_home" / "Art", lower=True)
    assert names == ["alarm clock", "bike", "candles"] and y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert class_prompts(names, None)[1] == ["a photo of a bike."]  # the official template when absent
    assert class_prompts(names, local / "prompts.json")[0] == [
        "a photo of an alarm clock",
        "a clock that rings",
    ]
    (tmp_path / "p.json").write_text(json.dumps({"bike": ["x"]}))
    with pytest.raises(ReproError, match="alarm clock"):
        class_prompts(names, tmp_path / "p.json")
    # configs/office31.yaml: lr 0.05, training_proportion 0.5, except 'amazon' (0.75 in main.py)
    assert settings({"dataset": "office31"}, "webcam")["training_proportion"] == 0.5
    assert settings({"dataset": "office31"}, "amazon")["training_proportion"] == 0.75
    assert settings({"dataset": "office31"}, "dslr")["lr"] == 0.05
    assert not settings({"dataset": "visda17"}, "validation")["gpt_prompts"]


def test_full_names_the_missing_variable(local, monkeypatch, tmp_path):
    from tfup.full import run_full

    for env in ("TFUP_CLIP", "TFUP_TARGET", "TFUP_DATASET"):
        monkeypatch.delenv(env, raising=False)
    with pytest.raises(MissingLocalData, match="TFUP_CLIP"):
        run_full(_cfg(local, clip=None), 0, _ctx())
    with pytest.raises(MissingLocalData, match="TFUP_TARGET"):
        run_full(_cfg(local, target=None), 0, _ctx())
    with pytest.raises(MissingLocalData, match="TFUP_DATASET"):
        run_full(_cfg(local, dataset=None), 0, _ctx())
    with pytest.raises(MissingLocalData, match="class folders"):
        run_full(_cfg(local, target=str(tmp_path)), 0, _ctx())


def test_full_scale_through_the_cli(local, tmp_path):
    """reproduce.py --scale full on the fixture: every arm, the derived gains, the claims and the figure."""
    from xentlab.testing.smoke import validate_result

    repro = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    repro.EXPERIMENTS[0].configs["full"].update(_cfg(local, epochs=2))
    repro.run_cli(repro.PAPER, repro.EXPERIMENTS, repro.CLAIMS, derived=repro.DERIVED, figures=repro.figures,
                  default_seeds={"full": [0]}, package_dir=Path(__file__).parents[1],
                  argv=["--scale", "full", "--out", str(tmp_path), "--quiet", "--device", "cpu"])  # fmt: skip
    result = json.loads((tmp_path / "result.json").read_text())
    validate_result(result)
    assert "gain/tfupt_vs_tfup_pts" in result["metrics"] and (tmp_path / "arms.png").is_file()
