"""The feature cache key follows the code (xentlab.data.cache, "The key rule"): same code, same key; an
edit of the clip reader, the resampler or the backbone's module, or a library upgrade, gives a new key."""

import pytest
from lase import backbone, data

from xentlab.audio import features
from xentlab.data import speech
from xentlab.data.cache import source_digest
from xentlab.testing.cache_keys import upgrade_library


def test_modules_hash_their_own_source():
    for mod in (data, backbone, features):
        assert mod.SOURCE_DIGEST == source_digest(mod.__file__), mod.__name__


@pytest.mark.parametrize(
    ("name", "module", "moves"),
    [
        ("mfcc", data, True),
        ("mfcc", speech, True),
        ("mfcc", features, True),
        ("mfcc", backbone, False),  # the MFCC frontend never runs the WavLM wrapper
        ("wavlm", backbone, True),
        ("wavlm", features, False),
    ],
)
def test_a_code_change_changes_exactly_the_dependent_key(name, module, moves, monkeypatch):
    before = data.features_code(name)
    assert data.features_code(name) == before  # same code, same key
    monkeypatch.setattr(module, "SOURCE_DIGEST", "0" * 16)  # as if the module's source had changed
    assert (data.features_code(name) != before) is moves
    monkeypatch.undo()
    assert data.features_code(name) == before


def test_a_library_upgrade_changes_the_key(monkeypatch):
    before = data.features_code("mfcc")
    upgrade_library(monkeypatch, "torch")
    assert data.features_code("mfcc") != before
    with pytest.raises(ValueError, match="unknown backbone"):
        data.features_code("hubert")


def test_features_are_cached_under_the_code_keyed_name(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path))
    import numpy as np

    rng = np.random.default_rng(0)
    clips = data.Clips(
        waves=[rng.standard_normal(8000).astype(np.float32) * 0.1 for _ in range(2)],
        speaker=np.array([0, 1]),
        language=np.array([0, 0]),
        split=np.array(["train", "heldout"]),
        languages=("en",),
        key="test-clips",
        info={},
    )
    x, _ = data.frozen_features(clips, {"name": "mfcc"})
    first = sorted(p.name for p in tmp_path.glob("lase-features-*.npz"))
    monkeypatch.setattr(features, "SOURCE_DIGEST", "0" * 16)
    y, _ = data.frozen_features(clips, {"name": "mfcc"})
    both = sorted(p.name for p in tmp_path.glob("lase-features-*.npz"))
    assert len(first) == 1 and len(both) == 2 and first[0] in both  # a new file, the old one left unread
    np.testing.assert_array_equal(x, y)
