"""The teacher cache key follows the code (xentlab.data.cache, "The key rule"): same code and config, same
key; an edit of the teacher's code or of the data generator, or a torch upgrade, gives a new key."""

import pytest
from cprd import experiment, losses, models

from xentlab.data import captioned_shapes, shapes
from xentlab.data.cache import source_digest
from xentlab.testing.cache_keys import assert_key_follows, assert_key_follows_library


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code keys computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    experiment.teacher_code.cache_clear()
    captioned_shapes.code_version.cache_clear()
    shapes.code_version.cache_clear()


def _key(**changes) -> str:
    experiment.teacher_code.cache_clear()
    captioned_shapes.code_version.cache_clear()
    shapes.code_version.cache_clear()
    return experiment.RunConfig(**changes).teacher_key()


def test_modules_hash_their_own_source():
    for mod in (experiment, losses, models):
        assert mod.SOURCE_DIGEST == source_digest(mod.__file__), mod.__name__


@pytest.mark.parametrize(
    "module", [experiment, models, losses, captioned_shapes, shapes], ids=lambda m: m.__name__
)
def test_a_code_change_changes_the_key(module, monkeypatch):
    before = _key()
    assert _key(weight=2.0) == before  # a student field stays out of the teacher's key
    assert _key(t_steps=7) != before  # a teacher field counts
    assert_key_follows(_key, monkeypatch, module)


def test_a_torch_upgrade_changes_the_key(monkeypatch):
    assert_key_follows_library(_key, monkeypatch, "torch")
