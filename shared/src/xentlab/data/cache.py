"""A cache directory for generated data, with atomic writes and checksums.

Everything xentlab generates (synthetic corpora, volumes, speech) is built once and kept under
`cache_dir()`. Writes go to a temporary file in the same directory and are renamed into place, so
a killed run never leaves a half-written file that a later run would trust.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


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
