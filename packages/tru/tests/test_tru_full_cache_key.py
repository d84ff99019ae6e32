"""The reasoner's targets (--scale full with ``reasoner``) are cached under a key that follows the code and
the inputs (xentlab.data.cache, "The key rule"): same code, reasoner files, rows and length, same key; an
edit of ``tru.full`` (prompt, parsing), ``tru.evaluate`` (``REFUSAL_RE`` picks what is kept) or
``xentlab.lm.generate``, a library upgrade, a re-saved reasoner, other rows or another ``max_new_tokens``,
a new key (targets written by older code or another model are never read)."""

import os

import pytest
import tru.full as full
from tru import evaluate

from xentlab.data.cache import source_digest
from xentlab.testing.cache_keys import assert_key_follows, assert_key_follows_library

ROWS = [{"question": "Where was Author 1 born?", "answer": "In Town 1."}]


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code key computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    full.targets_code.cache_clear()


@pytest.fixture
def reasoner(tmp_path):
    d = tmp_path / "reasoner"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"\0" * 64)
    return str(d)


def _key(reasoner, rows=ROWS, max_new_tokens=160, device="cpu") -> str:
    full.targets_code.cache_clear()
    return full.targets_key(rows, reasoner, max_new_tokens, device)


def test_module_hashes_its_own_source():
    assert full.SOURCE_DIGEST == source_digest(full.__file__)


def test_same_inputs_same_key_and_the_inputs_count(reasoner):
    before = _key(reasoner)
    assert _key(reasoner) == before
    assert _key(reasoner, rows=ROWS * 2) != before
    assert _key(reasoner, max_new_tokens=80) != before
    os.utime(os.path.join(reasoner, "config.json"), ns=(10**9, 10**9))  # a re-saved reasoner, same path
    assert _key(reasoner) != before


@pytest.mark.parametrize("module", [full, evaluate])
def test_an_edit_of_the_code_that_writes_or_keeps_targets_changes_the_key(reasoner, monkeypatch, module):
    assert_key_follows(lambda: _key(reasoner), monkeypatch, module)


def test_an_edit_of_generate_changes_the_key(reasoner, monkeypatch):
    """Through generate's ``SOURCE_DIGEST`` (its source as imported, i.e. the code that runs)."""
    from xentlab.lm import generate

    assert_key_follows(lambda: _key(reasoner), monkeypatch, generate)


def test_the_key_reads_generate_as_imported_not_its_file(reasoner, monkeypatch):
    """No fallback that hashes generate.py on disk (a file edited after import is not the code that runs):
    the key needs generate's ``SOURCE_DIGEST``."""
    from xentlab.lm import generate

    monkeypatch.delattr(generate, "SOURCE_DIGEST")
    with pytest.raises(AttributeError):
        _key(reasoner)


def test_the_device_counts(reasoner):
    """Greedy targets written on a GPU may differ from a CPU's (other kernels, other argmax ties)."""
    assert _key(reasoner, device="cuda") != _key(reasoner) == _key(reasoner, device="cpu")


@pytest.mark.parametrize("library", ["torch", "transformers", "tokenizers"])
def test_a_library_upgrade_changes_the_key(reasoner, monkeypatch, library):
    assert_key_follows_library(lambda: _key(reasoner), monkeypatch, library)
