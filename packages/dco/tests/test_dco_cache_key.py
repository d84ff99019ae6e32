"""The pretrained base's cache key follows the code (xentlab.data.cache, "The key rule"): same code and
config, same key; an edit of this package's training code, a core module it runs, or a library upgrade,
a new key (a base trained by older code is never loaded)."""

import importlib

import pytest
from dco import base

from xentlab.data.cache import source_digest
from xentlab.testing.cache_keys import (
    assert_key_follows,
    assert_key_follows_library,
    assert_module_edit_changes_key,
)

MODEL, TASK, BASE = {"d_model": 8}, {"n_train": 4}, {"seed": 0, "epochs": 1}


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code key computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    base.base_code.cache_clear()


def _key(model=MODEL, task=TASK, b=BASE) -> str:
    base.base_code.cache_clear()
    return base._key(model, task, b)


def test_module_hashes_its_own_source():
    assert base.SOURCE_DIGEST == source_digest(base.__file__)


def test_same_code_same_key_and_the_config_still_counts():
    before = _key()
    assert _key() == before
    assert _key(b={**BASE, "epochs": 2}) != before
    assert _key(task={"n_train": 5}) != before


def test_an_edit_of_this_module_changes_the_key(monkeypatch):
    before = _key()
    monkeypatch.setattr(base, "SOURCE_DIGEST", "0" * 16)  # as if base.py had been edited
    assert _key() != before


@pytest.mark.parametrize("name", ["dco.train", "dco.loss", "xentlab.data.arithmetic"])
def test_an_edit_of_a_module_that_shapes_the_weights_changes_the_key(monkeypatch, name):
    assert_module_edit_changes_key(_key, monkeypatch, name)


@pytest.mark.parametrize("name", ["xentlab.lm.train", "xentlab.models.tiny_lm", "xentlab.kernels.torch_lce"])
def test_an_edit_of_a_core_lm_module_changes_the_key(monkeypatch, name):
    # the LM stack sets SOURCE_DIGEST, which xentlab.lm.code reads (as if the file had been edited)
    assert_key_follows(_key, monkeypatch, importlib.import_module(name))


def test_the_lm_loss_backend_changes_the_key(monkeypatch):
    from xentlab.lm import train as lm_train

    before = _key()
    other = "plain" if lm_train.lm_loss_backend() == "cce" else "cce"
    monkeypatch.setattr(lm_train, "lm_loss_backend", lambda: other)
    assert _key() != before


def test_a_library_upgrade_changes_the_key(monkeypatch):
    assert_key_follows_library(_key, monkeypatch, "torch")
