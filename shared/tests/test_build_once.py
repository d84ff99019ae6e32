"""xentlab.data.build_once: one build across racing processes, nothing left by a failed build, torch
threads and global RNG states restored, files and directories, ``valid``."""

from __future__ import annotations

import multiprocessing
import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from xentlab.data.build_once import build_once, lock_path, torch_threads


def _write(text: str):
    def build(tmp: Path) -> None:
        tmp.write_text(text)

    return build


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _racer(path: str, log: str, barrier) -> None:
    """One of two processes asking for the same artifact at the same time (top level: picklable)."""

    def build(tmp: Path) -> None:
        with open(log, "a") as f:
            f.write("built\n")
        time.sleep(0.5)  # long enough that the other process arrives while this one builds
        tmp.write_text("artifact")

    barrier.wait()
    out = build_once(path, build, threads=None, fork_rng=False)
    assert Path(out).read_text() == "artifact"


def test_two_racing_processes_build_once(tmp_path):
    path, log = tmp_path / "model.pt", tmp_path / "builds.log"
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_racer, args=(str(path), str(log), barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text() == "built\n"  # the second process waited on the lock and found it built
    assert path.read_text() == "artifact"
    assert _listing(tmp_path) == ["builds.log", "model.pt", "model.pt.lock"]


def test_built_once_then_read_from_the_cache(tmp_path):
    calls = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        tmp.write_text("v1")

    path = tmp_path / "a.pt"
    assert build_once(path, build) == path
    assert build_once(path, build) == path
    assert len(calls) == 1 and path.read_text() == "v1"
    # the builder wrote a temporary in the same directory whose name ends with the target's (np.savez
    # and friends pick the format from the suffix), not the target itself
    assert calls[0].parent == tmp_path and calls[0].name.endswith("-a.pt") and calls[0] != path
    assert lock_path(path) == tmp_path / "a.pt.lock"


def test_failing_build_leaves_nothing(tmp_path):
    def build(tmp: Path) -> None:
        tmp.write_text("half")  # a partial write, then the build dies
        raise RuntimeError("out of memory")

    path = tmp_path / "a.pt"
    with pytest.raises(RuntimeError, match="out of memory"):
        build_once(path, build)
    assert _listing(tmp_path) == ["a.pt.lock"]

    def build_dir(tmp: Path) -> None:
        (tmp / "model").mkdir(parents=True)
        (tmp / "model" / "w.bin").write_bytes(b"x")
        raise KeyboardInterrupt  # also on a Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        build_once(tmp_path / "d", build_dir)
    assert _listing(tmp_path) == ["a.pt.lock", "d.lock"]


def test_builder_that_creates_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="without creating"):
        build_once(tmp_path / "a.pt", lambda tmp: None)
    assert not (tmp_path / "a.pt").exists()


def test_leftovers_of_a_killed_build_are_removed_by_the_next(tmp_path):
    path = tmp_path / "a.pt"
    killed = tmp_path / ".tmp-4242-0123abcd-a.pt"  # what a build killed mid-way leaves
    killed.write_text("half")
    other = tmp_path / ".tmp-4242-0123abcd-b-a.pt"  # a temporary of another artifact, "b-a.pt"
    other.write_text("in progress")
    build_once(path, _write("ok"))
    assert path.read_text() == "ok"
    assert not killed.exists() and other.exists()


def test_torch_threads_pinned_during_the_build_and_restored(tmp_path):
    old = torch.get_num_threads()
    seen = []
    try:
        torch.set_num_threads(2)

        def build(tmp: Path) -> None:
            seen.append(torch.get_num_threads())
            tmp.write_text("x")

        build_once(tmp_path / "a.pt", build)  # default: one thread
        assert seen == [1] and torch.get_num_threads() == 2
        build_once(tmp_path / "b.pt", build, threads=3)
        assert seen == [1, 3] and torch.get_num_threads() == 2
        build_once(tmp_path / "c.pt", build, threads=None)  # None: the caller's count
        assert seen == [1, 3, 2]

        def boom(tmp: Path) -> None:
            raise ValueError("boom")

        with pytest.raises(ValueError):
            build_once(tmp_path / "d.pt", boom, threads=1)
        assert torch.get_num_threads() == 2  # restored after a failure too
        with torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="at least 1"):
            with torch_threads(0):
                pass
    finally:
        torch.set_num_threads(old)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def _consume(tmp: Path) -> None:
    """A builder that moves every global RNG (and reseeds torch, as model builders do)."""
    torch.manual_seed(123)
    torch.randn(1000)
    np.random.rand(1000)
    random.random()
    tmp.write_text("x")


def test_global_rng_state_restored(tmp_path):
    _seed_all(0)
    expected = _draws()  # the stream of a unit that found the artifact cached
    _seed_all(0)
    build_once(tmp_path / "a.pt", _consume)
    assert _draws() == expected
    # and the switch is what does it: without it the builder's draws show up in the caller's stream
    _seed_all(0)
    build_once(tmp_path / "b.pt", _consume, fork_rng=False)
    got = _draws()
    assert all(g != e for g, e in zip(got, expected))


def test_directory_artifact(tmp_path):
    calls = []

    def build(tmp: Path) -> None:
        calls.append(1)
        (tmp / "model").mkdir(parents=True)
        (tmp / "model" / "weights.bin").write_bytes(b"w" * 10)
        (tmp / "metrics.json").write_text("{}")

    path = tmp_path / "seed0-abc"
    assert build_once(path, build) == path
    assert build_once(path, build) == path
    assert calls == [1]
    assert (path / "model" / "weights.bin").read_bytes() == b"w" * 10
    assert _listing(tmp_path) == ["seed0-abc", "seed0-abc.lock"]


def test_valid_false_rebuilds_file_and_directory(tmp_path):
    path = tmp_path / "a.pt"
    path.write_text("stale")
    calls = []

    def build(tmp: Path) -> None:
        calls.append(1)
        tmp.write_text("fresh")

    build_once(path, build, valid=lambda p: p.read_text() == "fresh")
    assert path.read_text() == "fresh" and calls == [1]
    build_once(path, build, valid=lambda p: p.read_text() == "fresh")  # now valid: not rebuilt
    assert calls == [1]

    d = tmp_path / "d"
    (d / "old").mkdir(parents=True)
    (d / "old" / "x").write_text("stale")  # a non-empty directory (os.replace alone would refuse)

    def build_dir(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "new").write_text("fresh")

    build_once(d, build_dir, valid=lambda p: (p / "new").exists())
    assert sorted(p.name for p in d.iterdir()) == ["new"]

    # a file replaced by a directory and back (a format change under the same name)
    build_once(path, build_dir, valid=lambda p: p.is_dir())
    assert (path / "new").read_text() == "fresh"
    build_once(path, build, valid=lambda p: p.is_file())
    assert path.read_text() == "fresh"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
