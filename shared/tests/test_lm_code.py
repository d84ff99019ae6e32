"""xentlab.lm.code: the LM stack's part of a cache key follows every module of the stack."""

import importlib

import pytest

from xentlab.data.cache import source_digest
from xentlab.lm import code as lm_code
from xentlab.lm import train as lm_train


def test_digests_are_the_hashes_of_the_modules_then_the_backend():
    got = lm_code.lm_stack_digests("xentlab.data.arithmetic")
    names = ("xentlab.data.arithmetic", *lm_code.LM_STACK_MODULES)
    assert got[:-1] == [source_digest(importlib.import_module(n).__file__) for n in names]
    assert got[-1] == lm_train.lm_loss_backend()
    assert lm_code.lm_stack_digests() == got[1:]  # no extras: the stack alone


@pytest.mark.parametrize("name", lm_code.LM_STACK_MODULES)
def test_stack_modules_are_keyed_by_their_own_source_digest(monkeypatch, name):
    # each stack module sets SOURCE_DIGEST (its file as imported, i.e. the code that runs), which the key
    # reads instead of hashing the file again; patching it is "an edit of that module"
    module = importlib.import_module(name)
    assert module.SOURCE_DIGEST == source_digest(module.__file__)
    before = lm_code.lm_stack_digests()
    monkeypatch.setattr(module, "SOURCE_DIGEST", "0" * 16)
    after = lm_code.lm_stack_digests()
    assert [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b] == [
        lm_code.LM_STACK_MODULES.index(name)
    ]


def test_an_extra_module_without_a_digest_is_hashed_from_its_file(monkeypatch, tmp_path):
    assert not hasattr(importlib.import_module("xentlab.data.arithmetic"), "SOURCE_DIGEST")
    before = lm_code.lm_stack_digests("xentlab.data.arithmetic")
    edited = tmp_path / "edited.py"
    edited.write_text("# edited\n")
    real = lm_code.source_digest
    monkeypatch.setattr(
        lm_code, "source_digest", lambda p: real(edited if str(p).endswith("data/arithmetic.py") else p)
    )
    after = lm_code.lm_stack_digests("xentlab.data.arithmetic")
    assert after[0] != before[0] and after[1:] == before[1:]


def test_an_unknown_module_is_a_clear_error():
    with pytest.raises(ModuleNotFoundError):
        lm_code.lm_stack_digests("xentlab.no_such_module")
