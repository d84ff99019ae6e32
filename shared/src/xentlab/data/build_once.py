"""Build a shared cached artifact once: lock, build if missing, rename into place.

Many packages train one model (a teacher, a base LM, a pre-trained backbone) or build one corpus that
every (experiment, seed) unit of a run then loads from ``cache_dir()``. ``build_once(path, build)`` is
the one place that does it, for three reasons:

* parallel units: the units run in several worker processes, so the first one to need the artifact
  builds it under a file lock while the others wait and then read it (``file_lock``);
* thread-count-dependent floats: torch's intra-op reductions split work by thread count, so a model
  trained with 2 threads differs in the last bits from one trained with 1, and training amplifies
  that (cprd's teacher: its ITM loss differed in the 3rd decimal after 100 steps). The artifact would
  then depend on the ``--threads`` of whichever unit came first; the build runs with ``threads``
  (default 1, what the runner uses) whatever the caller set, and the caller's count is restored;
* killed runs: the builder writes to a temporary path in the same directory, which is renamed onto
  ``path`` only when ``build`` returned (``os.replace``, atomic on one file system), so a run killed
  mid-build never leaves a half-written artifact that a later run would trust. Leftover temporaries
  of a killed build are removed by the next build of the same path.

It also (``fork_rng``, default on) restores the global torch / numpy / ``random`` RNG state after
the build, so a unit's random stream does not depend on whether it built the artifact or found it
cached (tfup's adapters, say, are initialised from the global torch RNG after the stand-in CLIP is
loaded or trained). The cache key in ``path`` is the caller's business (xentlab.data.cache, "The key
rule": it must name the code as well as the config).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from xentlab.data.cache import file_lock


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the caller's count.

    Why: float reductions depend on the thread count, so an artifact trained inside the block is the
    same whatever ``--threads`` the calling unit runs with."""
    import torch

    if n < 1:
        raise ValueError(f"thread count must be at least 1, got {n}")
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def restored_rng() -> Iterator[None]:
    """Run the block, then put back the global torch (CPU, and every CUDA device if CUDA is already
    initialised), numpy and ``random`` RNG states as they were before it."""
    import torch

    py, npy = random.getstate(), np.random.get_state()
    # fork CUDA only if this process already uses it: forking it would otherwise initialise CUDA
    # (a context on a CPU-only unit, and no more fork()-ed workers afterwards)
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of ``path``: ``<path>.lock`` next to it."""
    path = Path(path)
    return path.with_name(f"{path.name}.lock")


def _is_tmp_of(candidate: Path, path: Path) -> bool:
    """Is ``candidate`` a temporary of ``path`` (``.tmp-<pid>-<8 hex>-<path.name>``, exactly)?"""
    return re.fullmatch(r"\.tmp-\d+-[0-9a-f]{8}-" + re.escape(path.name), candidate.name) is not None


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def _fsync_tree(p: Path) -> None:
    """fsync the files of a finished build (a file, or every file under a directory), so that the
    rename never publishes data still only in the page cache."""
    files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
    for f in files:
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())


def build_once(
    path: str | os.PathLike,
    build: Callable[[Path], object],
    *,
    threads: int | None = 1,
    fork_rng: bool = True,
    valid: Callable[[Path], bool] | None = None,
) -> Path:
    """Return ``path``, calling ``build(tmp)`` first if it does not exist yet (once, across processes).

    Under ``file_lock(lock_path(path))``: if ``path`` exists (and ``valid(path)`` is true, when given)
    it is returned as is. Otherwise ``build(tmp)`` must create ``tmp``, a file or a directory (a fresh
    path in ``path``'s directory whose name ends with ``path.name``, so suffix-sensitive writers such as
    ``np.savez`` keep it); it runs with ``threads`` torch threads (None: the caller's count) and, with
    ``fork_rng``, the global torch / numpy / ``random`` RNG states restored afterwards. Then ``tmp`` is
    renamed onto ``path`` (``os.replace``; a stale or invalid target is removed first, under the lock)
    and ``path`` is returned. If ``build`` raises, or returns without creating ``tmp``, nothing is left
    behind and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(lock_path(path)):
        if path.exists() and (valid is None or valid(path)):
            return path
        # leftovers of builds killed mid-way (only a lock holder creates them, and we hold the lock)
        for stale in path.parent.glob(".tmp-*"):
            if _is_tmp_of(stale, path):
                _remove(stale)
        tmp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")
        try:
            with contextlib.ExitStack() as stack:
                if threads is not None:
                    stack.enter_context(torch_threads(threads))
                if fork_rng:
                    stack.enter_context(restored_rng())
                build(tmp)
            if not (tmp.exists() or tmp.is_symlink()):
                raise FileNotFoundError(f"build_once: the builder of {path} returned without creating {tmp}")
            _fsync_tree(tmp)
            if tmp.is_dir() or path.is_dir():  # os.replace cannot replace a non-empty directory
                _remove(path)
            os.replace(tmp, path)
        except BaseException:
            _remove(tmp)
            raise
    return path


__all__ = ["build_once", "lock_path", "restored_rng", "torch_threads"]
