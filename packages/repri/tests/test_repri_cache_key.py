"""The scene pool's cache key follows the code (xentlab.data.cache, "The key rule"): same code, config and
seed, same key; an edit of the scene generator or of the shapes it draws with, or a library upgrade, a new key."""

import pytest
from repri import scenes

from xentlab.data import images, shapes
from xentlab.data.cache import source_digest
from xentlab.testing.cache_keys import assert_key_follows, assert_key_follows_library


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code keys computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    scenes.code_version.cache_clear()
    shapes.code_version.cache_clear()


def _key(seed: int = 0, **changes) -> str:
    scenes.code_version.cache_clear()
    shapes.code_version.cache_clear()
    return scenes.SceneConfig(**changes).key(seed)


def test_module_hashes_its_own_source():
    assert scenes.SOURCE_DIGEST == source_digest(scenes.__file__)


@pytest.mark.parametrize("module", [scenes, shapes, images], ids=lambda m: m.__name__)
def test_a_code_change_changes_the_key(module, monkeypatch):
    before = _key()
    assert _key(seed=1) != before and _key(n_images=10) != before  # seed and config still count
    assert_key_follows(_key, monkeypatch, module)


def test_a_library_upgrade_changes_the_key(monkeypatch):
    assert_key_follows_library(_key, monkeypatch, "matplotlib")


def test_load_scenes_writes_under_the_code_keyed_name(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path))
    cfg = scenes.SceneConfig(n_images=2, size=16, classes=("circle", "square"), objects=(1, 1))
    scenes.load_scenes(cfg, seed=0)
    assert [p.name for p in tmp_path.glob("repri-scenes-*.npz")] == [
        f"repri-scenes-{_key(n_images=2, size=16, classes=('circle', 'square'), objects=(1, 1))}-v1.npz"
    ]
