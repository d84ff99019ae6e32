"""Test helpers for the cache's key rule (``xentlab.data.cache``): a key must change with the code and the
libraries that shape the cached output. Every package that caches tests its key the same way; these
helpers keep those tests to what is specific to each key (which modules, which libraries)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xentlab.data import cache as _cache


def upgrade_library(monkeypatch: Any, name: str, version: str = "9.9") -> None:
    """Make ``xentlab.data.cache.library_version`` report ``version`` for ``name`` (as after an upgrade),
    every other library unchanged. Undone with the test's ``monkeypatch``."""
    real = _cache.library_version
    monkeypatch.setattr(_cache, "library_version", lambda n: version if n == name else real(n))


def assert_key_follows(
    key: Callable[[], str], monkeypatch: Any, target: Any, attr: str = "SOURCE_DIGEST"
) -> None:
    """``key()`` is stable; it changes when ``target.attr`` (a module's source digest, as if its file had
    been edited) changes, and comes back when the patch is undone. ``key`` must recompute any memoised
    code key itself. Calls ``monkeypatch.undo()``: patches made earlier in the test are undone too."""
    before = key()
    assert key() == before, "the same code gave two different keys"
    monkeypatch.setattr(target, attr, "0" * 16)
    assert key() != before, f"{getattr(target, '__name__', target)}.{attr} changed but the key did not"
    monkeypatch.undo()
    assert key() == before, "the key did not come back when the code did"


def assert_key_follows_library(key: Callable[[], Any], monkeypatch: Any, name: str) -> None:
    """``key()`` changes when library ``name`` is upgraded (``upgrade_library``) and comes back when the
    patch is undone. ``key`` may return any comparable value (one key, or a dict of keys: then every key
    must change). Calls ``monkeypatch.undo()``: patches made earlier in the test are undone too."""
    before = key()
    upgrade_library(monkeypatch, name)
    after = key()
    if isinstance(before, dict):
        same = [k for k in before if after.get(k) == before[k]]
        assert not same, f"upgrading {name} left the keys {same} unchanged"
    else:
        assert after != before, f"upgrading {name} left the key unchanged"
    monkeypatch.undo()
    assert key() == before, "the key did not come back when the library did"


def assert_module_edit_changes_key(key: Callable[[], str], monkeypatch: Any, name: str) -> None:
    """``assert_key_follows`` for module ``name`` as ``xentlab.lm.code.module_digest`` reads it (keys built
    with ``lm_stack_digests``): through its ``SOURCE_DIGEST`` when it sets one, else through the hash of its
    file (``module_digest`` is patched for that one name, as if the file had been edited)."""
    import importlib

    from xentlab.lm import code as lm_code

    module = importlib.import_module(name)
    if hasattr(module, "SOURCE_DIGEST"):
        assert_key_follows(key, monkeypatch, module)
        return
    before = key()
    assert key() == before, "the same code gave two different keys"
    real = lm_code.module_digest
    monkeypatch.setattr(lm_code, "module_digest", lambda n: "0" * 16 if n == name else real(n))
    assert key() != before, f"{name} (hashed from its file) changed but the key did not"
    monkeypatch.undo()
    assert key() == before, "the key did not come back when the code did"


__all__ = [
    "assert_key_follows",
    "assert_key_follows_library",
    "assert_module_edit_changes_key",
    "upgrade_library",
]
