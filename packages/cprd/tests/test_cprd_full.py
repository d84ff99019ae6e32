"""--scale full end to end on a tiny random CLIP + 4 fake images the test writes, and the clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from xentlab.repro.local_data import MissingLocalData
from xentlab.repro.spec import ReproError
from xentlab.testing import load_reproduce

CAPTIONS = [["a red square", "a red box"], ["a blue circle", "a blue disc"], ["a green cross", "green x"],
            ["a red circle", "a round red thing"]]  # fmt: skip


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from PIL import Image
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from xentlab.data.tokenizer import get_tokenizer

    root = tmp_path_factory.mktemp("cprd_full")
    (root / "data" / "images").mkdir(parents=True)
    rows = []
    for i, (caps, split) in enumerate(zip(CAPTIONS, ["train", "restval", "test", "test"])):
        arr = np.random.default_rng(i).integers(0, 255, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / "data" / "images" / f"{i}.jpg")
        rows.append({"filename": f"{i}.jpg", "split": split, "sentences": [{"raw": c} for c in caps]})
    (root / "data" / "dataset_flickr30k.json").write_text(json.dumps({"images": rows}))
    tok = get_tokenizer([c for caps in CAPTIONS for c in caps] * 8, vocab_size=300, include_pydoc=False,
                        name="cprd-full-test")  # fmt: skip
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, eos_token_id=tok.eos_token_id),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=16),
        projection_dim=8,
    )  # fmt: skip
    CLIPModel(cfg).save_pretrained(root / "clip")
    tok.save_pretrained(root / "clip")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        root / "clip"
    )
    # the teacher file: 4 training pairs in fixed batches of 2 -> (2, 2, 2); test gallery 2 images x 4 captions
    from cprd.full import fixed_pair_batches

    batches = fixed_pair_batches(4, 2)
    scores = {
        "batch_scores": torch.randn(2, 2, 2),
        "test_scores": torch.randn(2, 4),
        "batches": torch.as_tensor(batches),
    }
    torch.save(scores, root / "teacher.pt")
    return root


def _cfg(local, arm: str) -> dict:
    mod = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    return {**mod.FULL, "arm": arm, "data_root": str(local / "data"), "clip": str(local / "clip"),
            "teacher_scores": str(local / "teacher.pt"), "dataset": "flickr30k", "batch_size": 2, "epochs": 1,
            "lr": 1e-3, "k": 1, "num_workers": 0, "eval_batch": 2, "log_every": 1}  # fmt: skip


def _ctx():
    return SimpleNamespace(device=torch.device("cpu"), scale="full", log=lambda **k: None)


@pytest.mark.parametrize("arm", ["teacher", "itc", "cprd"])
def test_full_arm_runs_end_to_end(local, arm):
    from cprd.full import run_full

    out = run_full(_cfg(local, arm), 0, _ctx())
    for d in ("i2t", "t2i"):
        for k in (1, 5, 10):
            assert 0.0 <= out[f"{d}_r{k}"] <= 100.0
    assert out["i2t_r10"] == 100.0 and out["t2i_r10"] == 100.0  # the gallery is smaller than 10
    if arm != "teacher":
        assert len(out["loss_curve"]) == 2 and np.isfinite(out["loss_curve"][-1][1])
    if arm == "cprd":
        assert "valid_negatives_per_anchor" in out


def test_recall_counts_any_caption_of_the_image():
    from cprd.full import recall_at_k

    # 2 images, 4 captions (0,1 -> image 0; 2,3 -> image 1); image 0 ranks caption 2 first, then 1
    score = torch.tensor([[0.1, 0.5, 0.9, 0.0], [0.0, 0.1, 0.2, 0.9]])
    out = recall_at_k(score, torch.tensor([0, 0, 1, 1]), ks=(1, 2))
    assert out["i2t_r1"] == 50.0 and out["i2t_r2"] == 100.0
    # captions: 0 -> argmax image 0 (0.1 vs 0.0) hit; 1 -> image 0 hit; 2 -> image 0 miss; 3 -> image 1 hit
    assert out["t2i_r1"] == 75.0


def test_full_names_the_missing_variable_and_checks_the_teacher_file(local, monkeypatch, tmp_path):
    from cprd.full import run_full

    monkeypatch.delenv("CPRD_CLIP", raising=False)
    with pytest.raises(MissingLocalData, match="CPRD_CLIP"):
        run_full({**_cfg(local, "itc"), "clip": None}, 0, _ctx())
    with pytest.raises(MissingLocalData, match="dataset_coco.json"):
        run_full({**_cfg(local, "itc"), "dataset": "coco"}, 0, _ctx())
    torch.save({"batch_scores": torch.zeros(3, 2, 2), "test_scores": torch.zeros(2, 4)}, tmp_path / "t.pt")
    with pytest.raises(ReproError, match="batch_scores"):
        run_full({**_cfg(local, "itc"), "teacher_scores": str(tmp_path / "t.pt")}, 0, _ctx())


def test_full_scale_through_the_cli(local, tmp_path):
    """reproduce.py --scale full on the fixture: every arm, derived gains, claims judged, the figure."""
    from xentlab.testing.smoke import validate_result

    repro = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    for e in repro.EXPERIMENTS:
        if e.configs["full"] is None:  # the long-budget arms exist at smoke / cpu scale only
            continue
        e.configs["full"].update({k: v for k, v in _cfg(local, "itc").items() if k != "arm"})
    repro.run_cli(repro.PAPER, repro.EXPERIMENTS, repro.CLAIMS, derived=repro.DERIVED, figures=repro.figures,
                  default_seeds={"full": [0]}, package_dir=Path(__file__).parents[1],
                  argv=["--scale", "full", "--out", str(tmp_path), "--quiet", "--device", "cpu"])  # fmt: skip
    result = json.loads((tmp_path / "result.json").read_text())
    validate_result(result)
    assert "gain/cprd_vs_itc_r1" in result["metrics"] and "cprd/i2t_r10" in result["metrics"]
    assert (tmp_path / "retrieval.png").is_file()


def test_export_lists_the_batches_in_the_teacher_file_order(local, tmp_path):
    from cprd.full import export_batches, fixed_pair_batches

    blob = json.loads(export_batches(_cfg(local, "itc"), tmp_path / "b.json").read_text())
    assert blob["batches"] == fixed_pair_batches(4, 2).tolist()
    slots = [s["caption"] for b in blob["batch_slots"] for s in b]
    assert sorted(slots) == sorted(CAPTIONS[0] + CAPTIONS[1])  # train + restval captions
    assert len(blob["test_images"]) == 2 and len(blob["test_captions"]) == 4


def test_full_student_uses_the_albef_fine_tuning_weight_decay(local, monkeypatch):
    """Full version 2: the CLIP student's AdamW gets ALBEF's retrieval fine-tuning recipe (configs/
    Retrieval_coco.yaml: lr 1e-5, weight_decay 0.02), not CLIP's pre-training decay 0.2; the optimiser
    really receives the config's decay."""
    import cprd.full

    mod = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    assert (mod.FULL["lr"], mod.FULL["min_lr"], mod.FULL["weight_decay"], mod.FULL["epochs"]) == (
        1e-5,
        1e-6,
        0.02,
        None,
    )
    seen = []
    real = torch.optim.AdamW

    def spy(params, **kw):
        seen.append(kw)
        return real(params, **kw)

    monkeypatch.setattr(cprd.full.torch.optim, "AdamW", spy)
    cfg = _cfg(local, "itc")
    cfg.pop("lr")  # keep the fixture's other overrides, but the recipe's lr and decay
    cprd.full.run_full({**cfg, "lr": mod.FULL["lr"]}, 0, _ctx())
    assert seen == [{"lr": 1e-5, "weight_decay": 0.02}]


def test_full_versions_move_the_full_units_alone():
    """A full-only change bumps FULL_VERSION, which enters the full scale's version and no other: the
    committed cpu units keep their keys (the workspace contract test checks those keys)."""
    mod = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    for exp in mod.EXPERIMENTS:
        if exp.config("full") is None:
            continue
        cpu = exp.version_at("cpu")
        assert exp.version_at("smoke") == cpu and exp.version_at("full") == f"{cpu}+full{mod.FULL_VERSION}"
        assert all("full_version" not in (exp.config(s) or {}) for s in ("smoke", "cpu", "full"))
    assert mod.FULL_VERSION == "3"


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        # timm cosine at t = 1, 2, 3, 4 of 5 epochs, then min_lr from t = 5 (hand: 1e-6 + 4.5e-6 (1 + cos(pi t / 5)))
        ("coco", [1e-5, 9.1406e-6, 6.8906e-6, 4.1094e-6, 1.8594e-6, 1e-6]),
        ("flickr30k", [1e-5, 9.7798e-6, 9.1406e-6, 8.145e-6, 6.8906e-6, 5.5e-6, 4.1094e-6, 2.855e-6,
                       1.8594e-6, 1.2202e-6, 1e-6]),
    ],
)  # fmt: skip
def test_albef_schedule_by_hand(dataset, expected):
    """ALBEF's retrieval schedule: iterations 0-100 of epoch 0 at lr (warm-up value, warmup_lr = lr), the
    rest of epoch 0 at t = 1, epoch e >= 1 at t = e + 1, so the last epoch trains at min_lr."""
    from cprd.full import ALBEF_EPOCHS, albef_lr

    n = ALBEF_EPOCHS[dataset]
    got = [albef_lr(0, 100, epochs=n, lr=1e-5, min_lr=1e-6), albef_lr(0, 101, epochs=n, lr=1e-5, min_lr=1e-6)]
    got += [albef_lr(e, 7, epochs=n, lr=1e-5, min_lr=1e-6) for e in range(1, n)]
    assert got == pytest.approx(expected, abs=1e-10)
    with pytest.raises(ValueError, match="epochs >= 1"):
        albef_lr(0, 0, epochs=0, lr=1e-5, min_lr=1e-6)


def test_full_student_trains_on_the_albef_schedule(local, monkeypatch):
    """The optimiser's lr at every step is albef_lr of that step's (epoch, iteration): with 2 batches
    per epoch and epochs=None on Flickr30K, 10 epochs x 2 steps, the last epoch at min_lr."""
    import cprd.full

    seen = []
    real_step = torch.optim.AdamW.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    cfg = {**_cfg(local, "itc"), "epochs": None, "lr": 1e-5}
    cprd.full.run_full(cfg, 0, _ctx())
    per_epoch = 2  # 4 training pairs in batches of 2 (the fixture)
    want = [
        cprd.full.albef_lr(s // per_epoch, s % per_epoch, epochs=10, lr=1e-5, min_lr=1e-6) for s in range(20)
    ]
    assert seen == pytest.approx(want, rel=1e-12)
    assert seen[-1] == pytest.approx(1e-6) and seen[0] == pytest.approx(1e-5)
