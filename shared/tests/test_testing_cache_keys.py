"""xentlab.testing.cache_keys: the helpers the packages' key tests use must fail on a key that ignores the code."""

import types

import pytest

from xentlab.data import cache
from xentlab.testing.cache_keys import (
    assert_key_follows,
    assert_key_follows_library,
    assert_module_edit_changes_key,
    upgrade_library,
)


def test_assert_key_follows_passes_for_a_key_that_reads_the_digest(monkeypatch):
    mod = types.SimpleNamespace(__name__="gen", SOURCE_DIGEST="a" * 16)
    assert_key_follows(lambda: cache.code_key(mod.SOURCE_DIGEST), monkeypatch, mod)
    assert mod.SOURCE_DIGEST == "a" * 16  # restored


def test_assert_key_follows_fails_for_a_key_that_ignores_the_code(monkeypatch):
    mod = types.SimpleNamespace(__name__="gen", SOURCE_DIGEST="a" * 16)
    with pytest.raises(AssertionError, match="gen.SOURCE_DIGEST changed but the key did not"):
        assert_key_follows(lambda: "config-only", monkeypatch, mod)


def test_assert_key_follows_fails_for_an_unstable_key(monkeypatch):
    mod = types.SimpleNamespace(__name__="gen", SOURCE_DIGEST="a" * 16)
    calls = iter(range(10))
    with pytest.raises(AssertionError, match="two different keys"):
        assert_key_follows(lambda: str(next(calls)), monkeypatch, mod)


def test_upgrade_library_changes_only_the_named_library(monkeypatch):
    numpy_before = cache.library_version("numpy")
    upgrade_library(monkeypatch, "torch", "0.0.1")
    assert cache.library_version("torch") == "0.0.1"
    assert cache.library_version("numpy") == numpy_before
    monkeypatch.undo()
    assert cache.library_version("torch") != "0.0.1"


@pytest.mark.parametrize("name", ["xentlab.data.arithmetic", "xentlab.lm.train"])  # no SOURCE_DIGEST / one
def test_assert_module_edit_changes_key_follows_lm_stack_keys(monkeypatch, name):
    from xentlab.lm.code import lm_stack_digests

    assert_module_edit_changes_key(
        lambda: cache.code_key(*lm_stack_digests("xentlab.data.arithmetic")), monkeypatch, name
    )


def test_assert_module_edit_changes_key_fails_for_a_key_without_the_module(monkeypatch):
    from xentlab.lm.code import lm_stack_digests

    with pytest.raises(AssertionError, match="xentlab.data.arithmetic .hashed from its file. changed"):
        assert_module_edit_changes_key(
            lambda: cache.code_key(*lm_stack_digests()), monkeypatch, "xentlab.data.arithmetic"
        )


def test_assert_key_follows_library_passes_for_a_key_that_reads_the_version(monkeypatch):
    assert_key_follows_library(lambda: cache.code_key("a" * 16, libraries=("torch",)), monkeypatch, "torch")
    both = {
        "x": lambda: cache.code_key("a" * 16, libraries=("numpy",)),
        "y": lambda: cache.code_key("b" * 16, libraries=("numpy",)),
    }
    assert_key_follows_library(lambda: {k: f() for k, f in both.items()}, monkeypatch, "numpy")


def test_assert_key_follows_library_fails_for_a_key_that_ignores_it(monkeypatch):
    with pytest.raises(AssertionError, match="upgrading torch left the key unchanged"):
        assert_key_follows_library(
            lambda: cache.code_key("a" * 16, libraries=("numpy",)), monkeypatch, "torch"
        )
    monkeypatch.undo()  # the failed check left its upgrade in place
    keys = {"x": lambda: cache.code_key("a" * 16, libraries=("torch",)), "y": lambda: "config-only"}
    with pytest.raises(AssertionError, match=r"left the keys \['y'\] unchanged"):
        assert_key_follows_library(lambda: {k: f() for k, f in keys.items()}, monkeypatch, "torch")
