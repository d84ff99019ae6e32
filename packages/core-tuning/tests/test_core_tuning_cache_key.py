"""The pre-training checkpoint's cache key follows the code (xentlab.data.cache, "The key rule"): same code
and config, same key; an edit of the pre-training code, of the pool's generator or a torch upgrade, a new key."""

import pytest
from core_tuning import model, pretrain

from xentlab.data import augment, shapes
from xentlab.data.cache import source_digest
from xentlab.losses import ntxent, supcon
from xentlab.models import cnn
from xentlab.testing.cache_keys import assert_key_follows, assert_key_follows_library


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code keys computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    pretrain.code_version.cache_clear()
    shapes.code_version.cache_clear()


def _key() -> str:
    pretrain.code_version.cache_clear()
    shapes.code_version.cache_clear()
    return pretrain.PretrainConfig().key()


def test_modules_hash_their_own_source():
    for mod in (pretrain, model):
        assert mod.SOURCE_DIGEST == source_digest(mod.__file__), mod.__name__


@pytest.mark.parametrize("module", [pretrain, model, shapes], ids=lambda m: m.__name__)
def test_a_code_change_changes_the_key(module, monkeypatch):
    before = _key()
    assert pretrain.PretrainConfig(epochs=11).key() != before  # the config still counts
    assert_key_follows(_key, monkeypatch, module)


@pytest.mark.parametrize("module", [cnn, augment, ntxent, supcon], ids=lambda m: m.__name__)
def test_a_core_module_edit_changes_the_key(module, monkeypatch):
    assert_key_follows(_key, monkeypatch, module)


def test_a_torch_upgrade_changes_the_key(monkeypatch):
    assert_key_follows_library(_key, monkeypatch, "torch")
