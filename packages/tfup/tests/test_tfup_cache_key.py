"""The stand-in CLIP's cache key follows the code (xentlab.data.cache, "The key rule"): same code and
config, same key; an edit of the training code, the schedule or the data generator, or a torch upgrade,
gives a new key."""

import pytest
from tfup import clip

from xentlab.data import captioned_shapes, shapes
from xentlab.data.cache import source_digest
from xentlab.testing.cache_keys import assert_key_follows, assert_key_follows_library
from xentlab.train import schedules


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code keys computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    clip.code_version.cache_clear()
    captioned_shapes.code_version.cache_clear()
    shapes.code_version.cache_clear()


def _key(**changes) -> str:
    clip.code_version.cache_clear()
    captioned_shapes.code_version.cache_clear()
    shapes.code_version.cache_clear()
    return clip.ClipConfig(**changes).key()


def test_module_hashes_its_own_source():
    assert clip.SOURCE_DIGEST == source_digest(clip.__file__)


@pytest.mark.parametrize(
    ("module", "name"),
    [(clip, "SOURCE_DIGEST"), (schedules, "SOURCE_DIGEST"), (captioned_shapes, "SOURCE_DIGEST"),
     (shapes, "SOURCE_DIGEST")],
)  # fmt: skip
def test_a_code_change_changes_the_key(module, name, monkeypatch):
    before = _key()
    assert _key(steps=7) != before  # the config still counts
    assert_key_follows(_key, monkeypatch, module, name)


def test_a_torch_upgrade_changes_the_key(monkeypatch):
    assert_key_follows_library(_key, monkeypatch, "torch")
