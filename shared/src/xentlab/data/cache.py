"""A cache directory for generated data, with atomic writes and checksums.

Everything xentlab generates (synthetic corpora, volumes, speech) is built once and kept under
`cache_dir()`. Writes go to a temporary file in the same directory and are renamed into place, so
a killed run never leaves a half-written file that a later run would trust.

A package that builds one model or corpus which its parallel (experiment, seed) units share (a teacher,
a pretrained base, a labelled data set) uses ``xentlab.data.build_once.build_once(path, build)`` rather
than writing the lock / check / build / rename steps itself: it also pins torch to one thread during the
build (float reductions depend on the thread count, so the artifact would otherwise depend on which
unit built it) and restores the global RNG states afterwards (so a unit's random stream does not depend
on whether it built the artifact or found it cached).

The key rule: a cache key names the CODE as well as the config
---------------------------------------------------------------
A cached entry is read back only when the code that wrote it is the code that runs now. Every
generator that caches (``shapes``, ``captioned_shapes``, ``images``' mnist5k / digits, ``tokenizer``,
``speech``) puts ``code_key(...)`` into its cache key, built from

* the ``SOURCE_DIGEST`` of each xentlab module whose code shapes the output: each such module sets
  ``SOURCE_DIGEST = source_digest(__file__)`` at import, i.e. a hash of the source file as it was
  when this process imported (and so ran) it, not as it is on disk later; and
* the installed versions of the third-party libraries whose numbers end up in the bytes (numpy's
  RNG, torch's resampling, matplotlib's rasteriser, ``tokenizers``' BPE trainer, ...).

So any edit to a generator module (even a comment) gives new keys and a fresh build; a stale file can
never be read again, and no one has to remember to bump a constant. The old entries stay on disk,
unread (delete them by hand when no run of an older checkout needs them). A new generator that
caches must do the same: set ``SOURCE_DIGEST`` in its module, list every module its output depends
on (its own and the helpers it calls) in its ``code_key`` call, and test that the key changes with
that code (``shared/tests/test_cache_keys.py``). Why: cprd's committed results were once computed on
``captioned-shapes-...-v1.npz`` images that an earlier version of the generator had written under the
same config-only key (up to 36/255 per pixel away from what the current code draws).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def source_digest(path: str | os.PathLike) -> str:
    """A 16-hex SHA-256 of a source file, line endings normalised (so a CRLF checkout keys the same).

    Call it at module level as ``SOURCE_DIGEST = source_digest(__file__)``: the file is read when the
    module is imported, which is when Python compiles the code that will run.
    """
    data = Path(path).read_bytes().replace(b"\r\n", b"\n")
    return hashlib.sha256(data).hexdigest()[:16]


def library_version(name: str) -> str:
    """The installed version of distribution ``name`` ("missing" if it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "missing"


def code_key(*digests: str, libraries: Sequence[str] = ()) -> str:
    """A 16-hex key of the generator code: the ``SOURCE_DIGEST`` of each module the output depends
    on plus the versions of ``libraries``. Part of every core generator's cache key (module docstring)."""
    if not digests:
        raise ValueError("code_key needs at least one source digest")
    blob = json.dumps(
        {"src": list(digests), "lib": {n: library_version(n) for n in libraries}}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_dir(*parts: str) -> Path:
    """The cache root (``$XENTLAB_CACHE`` or ``~/.cache/xentlab``), joined with ``parts`` and created."""
    root = Path(os.environ.get("XENTLAB_CACHE", Path.home() / ".cache" / "xentlab")).expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    For work that parallel units share through the cache (e.g. one pretrained model per seed that
    several experiments load): the first unit builds it while the others wait, then find it built.
    POSIX ``flock``: released when the block exits or the process dies.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_arrays(
    name: str, build: Callable[[], dict[str, np.ndarray]], *, version: str = "1"
) -> dict[str, np.ndarray]:
    """Return the arrays ``build()`` makes, computing them once and keeping them in the cache.

    The file is ``cache_dir()/<name>-v<version>.npz`` with a sidecar ``.sha256``; a file whose
    checksum does not match (truncated, edited) is rebuilt rather than trusted.
    """
    path = cache_dir() / f"{name}-v{version}.npz"
    digest = path.with_suffix(".npz.sha256")
    if path.exists() and digest.exists() and digest.read_text().strip() == sha256_file(path):
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    arrays = build()
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_text(digest, sha256_file(path) + "\n")
    return arrays
