"""The original model's cache key follows the code (xentlab.data.cache, "The key rule"): same code, config
and seed, same key; an edit of the code that builds, trains or evaluates it, or a library, a new key."""

import pytest
from tru import base, data, evaluate, targets

from xentlab.data import tokenizer
from xentlab.data.cache import source_digest
from xentlab.testing.cache_keys import assert_key_follows, assert_module_edit_changes_key, upgrade_library

CFG = {"model": "tiny", "vocab_size": 300, "finetune_steps": 2}


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code keys computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    base.base_code.cache_clear()


def _key(cfg=CFG, seed: int = 0) -> str:
    base.base_code.cache_clear()
    return base.base_key(cfg, seed)


def test_modules_hash_their_own_source():
    for mod in (base, data, evaluate, targets):
        assert mod.SOURCE_DIGEST == source_digest(mod.__file__), mod.__name__


@pytest.mark.parametrize("module", [base, data, evaluate, targets, tokenizer], ids=lambda m: m.__name__)
def test_a_code_change_changes_the_key(module, monkeypatch):
    before = _key()
    assert _key(seed=1) != before and _key({**CFG, "finetune_steps": 3}) != before  # seed, config count
    assert_key_follows(_key, monkeypatch, module)


@pytest.mark.parametrize("name", ["xentlab.lm.generate", "xentlab.models.tiny_lm", "xentlab.data.facts"])
def test_a_core_module_edit_changes_the_key(name, monkeypatch):
    assert_module_edit_changes_key(_key, monkeypatch, name)


def test_the_loss_backend_or_a_library_changes_the_key(monkeypatch):
    before = _key()
    import xentlab.lm.train as lm_train

    other = "plain" if lm_train.lm_loss_backend() == "cce" else "cce"
    monkeypatch.setattr(lm_train, "lm_loss_backend", lambda: other)
    assert _key() != before
    monkeypatch.undo()
    upgrade_library(monkeypatch, "tokenizers")
    assert _key() != before
    monkeypatch.undo()
    assert _key() == before
