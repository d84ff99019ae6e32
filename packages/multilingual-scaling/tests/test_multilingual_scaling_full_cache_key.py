"""The --scale full corpus cache key follows the code (xentlab.data.cache, "The key rule"): same code, files
and settings, same key; an edit of ``full.py`` (which reads, cuts, tokenizes and encodes the text), a
``tokenizers`` or numpy upgrade, a changed setting or a rewritten file, a new key and a new cache entry
(the old one left unread)."""

import os

import pytest
from multilingual_scaling import full

from xentlab.data.cache import source_digest
from xentlab.testing.cache_keys import assert_key_follows, assert_key_follows_library

CFG = {"tokenizer": "bpe", "vocab_size": 300, "tokenizer_chars": 2000, "max_bytes_per_language": 3000,
       "test_bytes_per_language": 500}  # fmt: skip


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code key computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    full.corpus_code.cache_clear()


@pytest.fixture
def files(tmp_path):
    out = {}
    for c in ("fr", "de"):
        out[c] = tmp_path / f"{c}.txt"
        out[c].write_text("".join(f"{c} ligne {k} mot{k % 7} fin\n" for k in range(200)), encoding="utf-8")
    return out


def _key(files, **over) -> str:
    full.corpus_code.cache_clear()
    return full.corpus_key({**CFG, **over}, files)


def test_module_hashes_its_own_source():
    assert full.SOURCE_DIGEST == source_digest(full.__file__)


def test_same_code_same_key_and_the_settings_and_files_still_count(files):
    before = _key(files)
    assert _key(files) == before
    assert _key(files, vocab_size=301) != before
    assert _key(files, tokenizer="bytes") != before
    assert _key(files, test_bytes_per_language=501) != before
    os.utime(files["fr"], ns=(10**9, 10**9))  # the same path, rewritten
    assert _key(files) != before


def test_an_edit_of_full_py_changes_the_key(files, monkeypatch):
    assert_key_follows(lambda: _key(files), monkeypatch, full)


@pytest.mark.parametrize("library", ["tokenizers", "numpy"])
def test_a_library_upgrade_changes_the_key(files, monkeypatch, library):
    assert_key_follows_library(lambda: _key(files), monkeypatch, library)


def test_a_code_edit_builds_a_new_entry_and_leaves_the_old_one_unread(files, tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    _, first = full.load_corpus(CFG, files)
    monkeypatch.setattr(full, "SOURCE_DIGEST", "0" * 16)  # as if full.py had been edited
    full.corpus_code.cache_clear()
    _, second = full.load_corpus(CFG, files)
    assert len(list((tmp_path / "cache" / "multilingual-scaling" / "tokenizers").glob("bpe-*.json"))) == 2
    assert len(list((tmp_path / "cache").glob("multilingual-scaling-corpus-*.npz"))) == 2
    assert all((first[k] == second[k]).all() for k in first)  # same code underneath: the same ids
