"""The --scale full caches (the joint BPE and the encoded splits) are keyed by the code as well as the files
and settings (xentlab.data.cache, "The key rule"): same code, same keys; an edit of ``full.py`` (which
reads, samples, trains the BPE, encodes and filters), a ``tokenizers`` or numpy upgrade, a changed setting
or a rewritten file, new keys and new cache entries (the old ones left unread)."""

import os

import pytest
from nmt_scaling import full

from xentlab.data.cache import source_digest
from xentlab.testing.cache_keys import assert_key_follows, upgrade_library


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code key computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    full.corpus_code.cache_clear()


@pytest.fixture
def files(tmp_path):
    words = [("the cat", "die katze"), ("a dog", "ein hund"), ("the bird sees", "der vogel sieht")]
    for split in full.SPLITS:
        (tmp_path / f"{split}.en").write_text("".join(f"{e} {k} .\n" for k in range(30) for e, _ in words))
        (tmp_path / f"{split}.de").write_text("".join(f"{d} {k} .\n" for k in range(30) for _, d in words))
    return full.corpus_files(full.FullConfig(data_root=str(tmp_path), vocab_size=300, max_len=16))


CFG = full.FullConfig(vocab_size=300, max_len=16, tokenizer_sentences=50)
KEYS = {"tokenizer": full.tokenizer_key, "splits": full.splits_key}


def _keys(files, cfg=CFG) -> dict[str, str]:
    full.corpus_code.cache_clear()
    return {name: key(cfg, files) for name, key in KEYS.items()}


def test_module_hashes_its_own_source():
    assert full.SOURCE_DIGEST == source_digest(full.__file__)


def test_same_code_same_keys_and_the_settings_and_files_still_count(files):
    from dataclasses import replace

    before = _keys(files)
    assert _keys(files) == before and before["tokenizer"] != before["splits"]
    assert all(a != b for a, b in zip(_keys(files, replace(CFG, vocab_size=301)).values(), before.values()))
    moved = _keys(files, replace(CFG, max_len=17))  # the encoding's filter, not the BPE
    assert moved["tokenizer"] == before["tokenizer"] and moved["splits"] != before["splits"]
    assert _keys(files, replace(CFG, d_model=8)) == before  # the model's fields stay out of the keys
    os.utime(files["test"][1], ns=(10**9, 10**9))  # the same path, rewritten
    assert all(a != b for a, b in zip(_keys(files).values(), before.values()))


@pytest.mark.parametrize("name", list(KEYS))
def test_an_edit_of_full_py_changes_the_key(files, monkeypatch, name):
    assert_key_follows(lambda: _keys(files)[name], monkeypatch, full)


@pytest.mark.parametrize("library", ["tokenizers", "numpy"])
def test_a_library_upgrade_changes_both_keys(files, monkeypatch, library):
    before = _keys(files)
    upgrade_library(monkeypatch, library)
    assert all(a != b for a, b in zip(_keys(files).values(), before.values()))


def test_a_code_edit_builds_new_entries_and_leaves_the_old_ones_unread(files, tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    first = full.load_splits(CFG, files, full.get_tokenizer(CFG, files))
    monkeypatch.setattr(full, "SOURCE_DIGEST", "0" * 16)  # as if full.py had been edited
    full.corpus_code.cache_clear()
    second = full.load_splits(CFG, files, full.get_tokenizer(CFG, files))
    assert len(list((tmp_path / "cache" / "nmt-scaling" / "tokenizers").glob("bpe-300-*.json"))) == 2
    assert len(list((tmp_path / "cache").glob("nmt-scaling-corpus-*.npz"))) == 2
    for s in full.SPLITS:  # same code underneath: the same ids
        assert (first[s].src == second[s].src).all() and (first[s].tgt_off == second[s].tgt_off).all()
