"""The --scale full path on a tiny synthesised fixture: official-layout manifests of espeak clips, and a
tiny randomly initialised WavLM (12 layers, so layers 10-12 exist) saved locally, no network."""

import json
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from lase.data import manifest_clips, read_wav

from xentlab.data.speech import synthesize
from xentlab.repro import RunContext
from xentlab.testing import load_reproduce

REPRODUCE = Path(__file__).parents[1] / "reproduce.py"


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.astype("<i2").tobytes())


@pytest.fixture(scope="module")
def fixture_dirs(tmp_path_factory):
    """Two training and two held-out voices x 4 languages x 2 clips, at espeak's 22,050 Hz (so loading
    resamples), in the official layout: manifest.jsonl rows {voice_id, lang, wav_path}."""
    root = tmp_path_factory.mktemp("lase_full")
    texts = {
        "en": ["bako mira", "sute lona"],
        "hi": ["कमला पिता", "सुनो मेला"],
        "ta": ["கமலா படி", "சுனோ மேலா"],
        "te": ["కమల పిత", "సునో మేలా"],
    }
    voices = {"train": ["m1", "f2"], "heldout": ["m3", "f4"]}
    items, where = [], []
    for split, names in voices.items():
        for v in names:
            for lang, pair in texts.items():
                for k, text in enumerate(pair):
                    voice = {"en": "en-us"}.get(lang, lang)
                    items.append({"text": text, "voice": f"{voice}+{v}", "pitch": 50, "speed": 160})
                    where.append((split, v, lang, k))
    clips = synthesize(items)  # one subprocess, 32 short clips
    for split in voices:
        (root / split / "wavs").mkdir(parents=True)
    rows = {s: [] for s in voices}
    for (split, v, lang, k), c in zip(where, clips):
        rel = f"wavs/{v}_{lang}_{k}.wav"
        _write_wav(root / split / rel, c, 22_050)
        rows[split].append(json.dumps({"voice_id": v, "lang": lang, "wav_path": rel}, ensure_ascii=False))
    for split in voices:
        (root / split / "manifest.jsonl").write_text("\n".join(rows[split]) + "\n", encoding="utf-8")

    from transformers import WavLMConfig, WavLMForXVector, WavLMModel

    cfg = WavLMConfig(
        hidden_size=16, num_hidden_layers=12, num_attention_heads=2, intermediate_size=32,
        num_feat_extract_layers=2, conv_dim=(16, 16), conv_kernel=(10, 32), conv_stride=(10, 32),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_buckets=16, max_bucket_distance=64,
        tdnn_dim=(16, 16, 16, 16, 32), tdnn_kernel=(5, 3, 3, 1, 1), tdnn_dilation=(1, 2, 3, 1, 1),
        xvector_output_dim=8, apply_spec_augment=False,
    )  # fmt: skip
    torch.manual_seed(0)
    WavLMModel(cfg).save_pretrained(root / "wavlm")
    WavLMForXVector(cfg).save_pretrained(root / "wavlm_sv")
    return root


def test_manifest_loading(fixture_dirs):
    clips = manifest_clips(fixture_dirs / "train", fixture_dirs / "heldout")
    assert len(clips.waves) == 32 and clips.languages == ("en", "hi", "ta", "te")
    assert set(clips.speaker[clips.idx("train")]) == {0, 1} and set(clips.speaker[clips.idx("heldout")]) == {
        2,
        3,
    }
    w = read_wav(fixture_dirs / "train" / "wavs" / "m1_en_0.wav")
    assert w.dtype == np.float32 and 0.3 * 16_000 < len(w) < 4 * 16_000  # resampled to 16 kHz
    bad = fixture_dirs / "bad"
    bad.mkdir()
    (bad / "manifest.jsonl").write_text(
        json.dumps({"voice_id": "x", "lang": "fr", "wav_path": "a.wav"}) + "\n"
    )
    with pytest.raises(ValueError, match="language"):
        manifest_clips(bad, fixture_dirs / "heldout")
    with pytest.raises(FileNotFoundError, match="manifest"):
        manifest_clips(fixture_dirs / "nowhere", fixture_dirs / "heldout")


def test_wavlm_layers_10_to_12_are_averaged(fixture_dirs):
    from lase.backbone import WavLMLayerMean
    from transformers import WavLMModel

    backbone = WavLMLayerMean(str(fixture_dirs / "wavlm"), (10, 12))
    x = torch.randn(2, 32_000)
    ref = (
        WavLMModel.from_pretrained(fixture_dirs / "wavlm").eval()(x, output_hidden_states=True).hidden_states
    )
    expected = ((ref[10] + ref[11] + ref[12]) / 3).mean(1)
    assert torch.allclose(backbone(x), expected, atol=1e-6)
    assert not any(p.requires_grad for p in backbone.model.parameters())  # frozen
    with pytest.raises(ValueError, match="layers"):
        WavLMLayerMean(str(fixture_dirs / "wavlm"), (10, 13))


def test_full_scale_units_run_on_the_fixture(fixture_dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    rep = load_reproduce(REPRODUCE)
    cfg = {
        "data": {
            "source": "manifest",
            "train_dir": str(fixture_dirs / "train"),
            "heldout_dir": str(fixture_dirs / "heldout"),
        },
        "backbone": {"name": "wavlm", "path": str(fixture_dirs / "wavlm"), "layers": [10, 12]},
        "train": rep.TRAIN | {"steps": 6, "warmup": 2, "ramp": 2},
        "eval": rep.EVAL | {"n_pairs": 20, "n_boot": 50, "probe_folds": 2, "projection": False},
    }

    def ctx(name):
        return RunContext("full", 0, torch.device("cpu"), name, tmp_path, tmp_path / f"{name}.jsonl", False)

    raw = rep.raw(cfg, 0, ctx("raw"))
    assert raw["corpus"]["feature_dim"] == 16  # the tiny WavLM's hidden size
    lase = rep.lase(cfg, 0, ctx("lase"))
    assert lase["curves"]["lambda"][-1] == pytest.approx(0.1)
    sv = rep.wavlm_sv(cfg | {"path": str(fixture_dirs / "wavlm_sv")}, 0, ctx("wavlm_sv"))
    for out in (raw, lase, sv):
        for k in ("within", "cross", "floor", "gap", "margin", "gap_lo", "gap_hi", "eer", "lang_probe_acc"):
            assert np.isfinite(out[k]), k
    assert (tmp_path / "lase.jsonl").exists()
