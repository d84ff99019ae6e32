"""Manifest clips (--scale full) are keyed by their audio, not only by the manifests: a re-recorded WAV
under an unchanged manifest gives a new ``Clips.key`` and so new cached features, never the stale ones
(xentlab.data.cache, "The key rule"; the feature key's code part is tested in test_lase_cache_key.py)."""

import json
import os
import wave
from pathlib import Path

import numpy as np
import pytest
from lase import data


def _write_wav(path: Path, seed: int, rate: int = 16_000) -> None:
    samples = (np.random.default_rng(seed).standard_normal(rate // 4) * 3000).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.tobytes())


@pytest.fixture
def dirs(tmp_path):
    """A training and a held-out manifest directory, two 0.25 s noise clips each."""
    for i, split in enumerate(("train", "heldout")):
        d = tmp_path / split
        d.mkdir()
        rows = []
        for k, lang in enumerate(("en", "hi")):
            _write_wav(d / f"{k}.wav", seed=10 * i + k)
            rows.append(json.dumps({"voice_id": f"v{i}", "lang": lang, "wav_path": f"{k}.wav"}))
        (d / "manifest.jsonl").write_text("\n".join(rows) + "\n")
    return tmp_path


def _clips(dirs: Path) -> data.Clips:
    return data.manifest_clips(dirs / "train", dirs / "heldout")


def test_same_files_same_key_and_the_decoding_is_unchanged(dirs):
    a, b = _clips(dirs), _clips(dirs)
    assert a.key == b.key and a.key.startswith("manifest-")
    for k, w in enumerate(a.waves[:2]):  # the bytes read once for the hash decode as read_wav(path) does
        np.testing.assert_array_equal(w, data.read_wav(dirs / "train" / f"{k}.wav"))


def test_a_rerecorded_wav_under_the_same_manifest_changes_the_key(dirs):
    before = _clips(dirs).key
    manifest = (dirs / "heldout" / "manifest.jsonl").read_text()
    _write_wav(dirs / "heldout" / "1.wav", seed=99)  # same name, same length, new audio
    assert (dirs / "heldout" / "manifest.jsonl").read_text() == manifest
    assert _clips(dirs).key != before
    _write_wav(dirs / "heldout" / "1.wav", seed=11)  # the original recording back: the original key
    assert _clips(dirs).key == before


def test_touching_a_wav_keeps_the_key(dirs):
    """The key is the audio's content, not its file metadata: a copy or touch rebuilds nothing."""
    before = _clips(dirs).key
    os.utime(dirs / "train" / "0.wav", ns=(10**9, 10**9))
    assert _clips(dirs).key == before


def test_the_manifest_still_counts(dirs):
    before = _clips(dirs).key
    path = dirs / "train" / "manifest.jsonl"
    path.write_text(path.read_text().replace('"v0"', '"v9"'))  # another speaker label, same audio
    assert _clips(dirs).key != before


def test_new_audio_is_featurised_anew_and_the_old_entry_is_left_unread(dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    x, _ = data.frozen_features(_clips(dirs), {"name": "mfcc"})
    _write_wav(dirs / "train" / "0.wav", seed=99)
    y, _ = data.frozen_features(_clips(dirs), {"name": "mfcc"})
    assert len(list((tmp_path / "cache").glob("lase-features-mfcc-*.npz"))) == 2
    assert not np.array_equal(x[0], y[0]) and np.array_equal(x[1:], y[1:])  # only clip 0's features moved
