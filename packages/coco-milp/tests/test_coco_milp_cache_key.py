"""The label cache key follows the code (xentlab.data.cache, "The key rule"): same code and config, same
key; an edit of any module that builds the data, or another PySCIPOpt / SCIP, gives a new key."""

import pytest
from coco_milp import data, instances, solve

from xentlab.data.cache import source_digest
from xentlab.testing.cache_keys import assert_key_follows, upgrade_library


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code keys computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    data.code_version.cache_clear()


def _key() -> str:
    data.code_version.cache_clear()
    return data.DataConfig().key()


def test_modules_hash_their_own_source():
    for mod in (data, instances, solve):
        assert mod.SOURCE_DIGEST == source_digest(mod.__file__), mod.__name__


@pytest.mark.parametrize("module", [data, instances, solve], ids=lambda m: m.__name__)
def test_a_code_change_changes_the_key(module, monkeypatch):
    before = _key()
    assert data.DataConfig(n_train=61).key() != before  # the config still counts
    assert_key_follows(_key, monkeypatch, module)


@pytest.mark.parametrize("what", ["pyscipopt", "scip"])
def test_another_solver_changes_the_key(what, monkeypatch):
    before = _key()
    if what == "scip":
        monkeypatch.setattr(data, "scip_version", lambda: "0.0.0")
    else:
        upgrade_library(monkeypatch, "pyscipopt")
    assert _key() != before
    monkeypatch.undo()
    assert _key() == before
