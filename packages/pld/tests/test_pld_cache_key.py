"""The teacher cache key follows the code (xentlab.data.cache, "The key rule"): same code and config, same
key; an edit of the training code, the architectures, the data generators, or a torch upgrade, a new key."""

import pytest
from pld import experiment

from xentlab.data import images, shapes
from xentlab.data.cache import source_digest
from xentlab.models import cnn
from xentlab.testing.cache_keys import assert_key_follows, assert_key_follows_library


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code keys computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    experiment.teacher_code.cache_clear()
    shapes.code_version.cache_clear()


def _key(**changes) -> str:
    experiment.teacher_code.cache_clear()
    shapes.code_version.cache_clear()
    return experiment.teacher_key(experiment.RunConfig(**changes))


def test_module_hashes_its_own_source():
    assert experiment.SOURCE_DIGEST == source_digest(experiment.__file__)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (experiment, "SOURCE_DIGEST"),
        (cnn, "SOURCE_DIGEST"),
        (images, "SOURCE_DIGEST"),
        (shapes, "SOURCE_DIGEST"),
    ],
)
def test_a_code_change_changes_the_key(module, name, monkeypatch):
    before = _key()
    assert _key(loss="kd") == before  # the student's fields stay out of the teacher's key
    assert _key(teacher_seed=1) != before  # the teacher's fields count
    assert_key_follows(_key, monkeypatch, module, name)


def test_a_torch_upgrade_changes_the_key(monkeypatch):
    assert_key_follows_library(_key, monkeypatch, "torch")
