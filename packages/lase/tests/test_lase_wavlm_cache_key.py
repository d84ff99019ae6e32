"""The WavLM features (--scale full) are keyed by the weights themselves, not only by the ``path`` string
(xentlab.data.cache, "The key rule"): re-downloaded or re-saved weights under the same path, or a hub name
whose cached snapshot moved on, give a new key and new features, never the stale cached ones; the same
bytes (a touched file) keep the key, as the manifest clips' WAVs do (test_lase_manifest_cache_key.py)."""

import os
import shutil

import numpy as np
import pytest
import torch
from lase import backbone, data

from xentlab.testing.cache_keys import assert_key_follows, assert_key_follows_library

LAYERS = [1, 2]


def _save_wavlm(path, seed: int) -> None:
    from transformers import WavLMConfig, WavLMModel

    cfg = WavLMConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        num_feat_extract_layers=2, conv_dim=(16, 16), conv_kernel=(10, 32), conv_stride=(10, 32),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_buckets=16, max_bucket_distance=64,
        apply_spec_augment=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    WavLMModel(cfg).save_pretrained(path)


@pytest.fixture
def wavlm(tmp_path):
    path = tmp_path / "wavlm"
    _save_wavlm(path, seed=0)
    return path


@pytest.fixture
def clips():
    rng = np.random.default_rng(0)
    return data.Clips(
        waves=[rng.standard_normal(8000).astype(np.float32) * 0.1 for _ in range(2)],
        speaker=np.array([0, 1]),
        language=np.array([0, 0]),
        split=np.array(["train", "heldout"]),
        languages=("en",),
        key="test-clips",
        info={},
    )


def _cfg(path) -> dict:
    return {"name": "wavlm", "path": str(path), "layers": LAYERS}


def test_weights_identity_is_size_and_sha256_of_every_file(wavlm):
    import hashlib

    ident = backbone.weights_identity(wavlm)
    names = [row[0] for row in ident]
    assert names == sorted(names) and "model.safetensors" in names and "config.json" in names
    for name, size, sha in ident:
        raw = (wavlm / name).read_bytes()
        assert size == len(raw) and sha == hashlib.sha256(raw).hexdigest()


def test_resaved_weights_under_the_same_path_change_the_key(clips, wavlm):
    before = data.features_key(clips, _cfg(wavlm))
    assert data.features_key(clips, _cfg(wavlm)) == before  # same weights, same key
    _save_wavlm(wavlm, seed=1)  # re-downloaded / re-saved: same path, same size, other weights
    assert data.features_key(clips, _cfg(wavlm)) != before
    _save_wavlm(wavlm, seed=0)  # the original weights back: the original key
    assert data.features_key(clips, _cfg(wavlm)) == before


def test_touching_the_weights_keeps_the_key(clips, wavlm):
    before = data.features_key(clips, _cfg(wavlm))
    os.utime(wavlm / "model.safetensors", ns=(10**9, 10**9))
    assert data.features_key(clips, _cfg(wavlm)) == before


def test_hidden_folders_are_not_part_of_the_weights(clips, wavlm):
    """A git-lfs clone's .git (a second copy of the weights) or the hub's .cache metadata are skipped."""
    before = data.features_key(clips, _cfg(wavlm))
    (wavlm / ".cache").mkdir()
    (wavlm / ".cache" / "model.safetensors.metadata").write_text("etag 123\n")
    assert data.features_key(clips, _cfg(wavlm)) == before


def test_the_code_and_libraries_still_count(clips, wavlm, monkeypatch):
    assert_key_follows(lambda: data.features_key(clips, _cfg(wavlm)), monkeypatch, backbone)
    assert_key_follows_library(lambda: data.features_key(clips, _cfg(wavlm)), monkeypatch, "transformers")


def test_the_mfcc_key_reads_no_weights(clips):
    assert data.features_key(clips, {"name": "mfcc"}) == data.features_key(clips, {"name": "mfcc"})


def _fake_hub_cache(root, name: str, revision: str, weights_from) -> None:
    """The hub cache layout huggingface_hub reads offline: refs/main names the snapshot folder."""
    repo = root / f"models--{name.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    shutil.copytree(weights_from, repo / "snapshots" / revision)


def test_a_hub_name_is_keyed_by_its_cached_snapshot(clips, wavlm, tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    monkeypatch.setattr(backbone, "HUB_CACHE", hub)
    _fake_hub_cache(hub, "org/wavlm-tiny", "a" * 40, wavlm)
    cfg = _cfg("org/wavlm-tiny")
    assert backbone.weights_dir("org/wavlm-tiny") == hub / "models--org--wavlm-tiny" / "snapshots" / (
        "a" * 40
    )
    before = data.features_key(clips, cfg)
    assert data.features_key(clips, cfg) == before
    other = tmp_path / "other"
    _save_wavlm(other, seed=1)
    _fake_hub_cache(hub, "org/wavlm-tiny", "b" * 40, other)  # the name now points at new weights
    assert data.features_key(clips, cfg) != before


def test_a_missing_backbone_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr(backbone, "HUB_CACHE", tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never the network in a test
    with pytest.raises(FileNotFoundError, match="LASE_WAVLM"):
        backbone.weights_dir(str(tmp_path / "nowhere"))


def test_new_weights_are_featurised_anew(clips, wavlm, tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    x, spent = data.frozen_features(clips, _cfg(wavlm))
    _, again = data.frozen_features(clips, _cfg(wavlm))
    assert again == 0.0  # read from the cache
    _save_wavlm(wavlm, seed=1)
    y, _ = data.frozen_features(clips, _cfg(wavlm))
    assert len(list((tmp_path / "cache").glob("lase-features-wavlm-*.npz"))) == 2
    assert x.shape == y.shape == (2, 16) and not np.allclose(x, y)
