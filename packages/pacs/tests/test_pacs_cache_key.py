"""The SFT model's cache key follows the code (xentlab.data.cache, "The key rule"): same code, config and
seed, same key; an edit of the SFT code, its evaluation, a core module it runs, or a library, a new key."""

import pytest
from pacs import evaluate, task

from xentlab.data import tokenizer
from xentlab.data.cache import source_digest
from xentlab.testing.cache_keys import (
    assert_key_follows,
    assert_key_follows_library,
    assert_module_edit_changes_key,
)

CFG = {"task": {}, "model": "tiny", "n_sft": 8, "sft_steps": 2}


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code keys computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    task.sft_code.cache_clear()


def _key(cfg=CFG, seed: int = 0) -> str:
    task.sft_code.cache_clear()
    return task.sft_key(cfg, seed)


def test_modules_hash_their_own_source():
    for mod in (task, evaluate):
        assert mod.SOURCE_DIGEST == source_digest(mod.__file__), mod.__name__


@pytest.mark.parametrize("module", [task, evaluate, tokenizer], ids=lambda m: m.__name__)
def test_a_code_change_changes_the_key(module, monkeypatch):
    before = _key()
    assert _key(seed=1) != before and _key({**CFG, "sft_steps": 3}) != before  # seed and config count
    assert_key_follows(_key, monkeypatch, module)


@pytest.mark.parametrize("name", ["xentlab.lm.train", "xentlab.kernels.lce", "xentlab.data.arithmetic"])
def test_a_core_module_edit_changes_the_key(name, monkeypatch):
    assert_module_edit_changes_key(_key, monkeypatch, name)


def test_a_library_upgrade_changes_the_key(monkeypatch):
    assert_key_follows_library(_key, monkeypatch, "transformers")
