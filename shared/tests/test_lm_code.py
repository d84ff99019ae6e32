"""xentlab.lm.code: the LM stack's part of a cache key follows every module of the stack."""

import pytest

from xentlab.data.cache import source_digest
from xentlab.lm import code as lm_code
from xentlab.lm import train as lm_train


def test_digests_are_the_hashes_of_the_modules_then_the_backend():
    import importlib

    got = lm_code.lm_stack_digests("xentlab.data.arithmetic")
    names = ("xentlab.data.arithmetic", *lm_code.LM_STACK_MODULES)
    assert got[:-1] == [source_digest(importlib.import_module(n).__file__) for n in names]
    assert got[-1] == lm_train.lm_loss_backend()
    assert lm_code.lm_stack_digests() == got[1:]  # no extras: the stack alone


@pytest.mark.parametrize("suffix", ["models/tiny_lm.py", "lm/generate.py", "kernels/lce.py", "train/loop.py"])
def test_an_edit_of_any_stack_module_changes_the_digests(monkeypatch, tmp_path, suffix):
    before = lm_code.lm_stack_digests()
    edited = tmp_path / "edited.py"
    edited.write_text("# edited\n")
    real = lm_code.source_digest
    monkeypatch.setattr(lm_code, "source_digest", lambda p: real(edited if str(p).endswith(suffix) else p))
    after = lm_code.lm_stack_digests()
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 1


def test_an_unknown_module_is_a_clear_error():
    with pytest.raises(ModuleNotFoundError):
        lm_code.lm_stack_digests("xentlab.no_such_module")
