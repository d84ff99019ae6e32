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


__all__ = ["assert_key_follows", "upgrade_library"]
