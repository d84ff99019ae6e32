import numpy as np
import pytest

from xentlab.data import atomic_write_bytes, cache_dir, cached_arrays, load_digits_split


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(p, b"one")
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two"
    assert [x.name for x in p.parent.iterdir()] == ["f.bin"]


def test_atomic_write_failure_keeps_old_file(tmp_path):
    p = tmp_path / "f.txt"
    atomic_write_bytes(p, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(p, "not bytes")  # type: ignore[arg-type]
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]


def test_cached_arrays_builds_once_and_rebuilds_when_corrupt(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(5)}

    assert cached_arrays("toy", build)["x"].tolist() == [0, 1, 2, 3, 4]
    assert cached_arrays("toy", build)["x"].tolist() == [0, 1, 2, 3, 4]
    assert len(calls) == 1
    (cache_dir() / "toy-v1.npz").write_bytes(b"truncated")
    assert cached_arrays("toy", build)["x"].tolist() == [0, 1, 2, 3, 4]
    assert len(calls) == 2


def test_digits_split_is_seeded_stratified_and_standardised_on_train_only():
    a, b = load_digits_split(0), load_digits_split(0)
    assert a.x_train.shape == (1437, 64) and a.x_test.shape == (360, 64)
    assert (a.x_train == b.x_train).all() and (a.y_test == b.y_test).all()
    assert not (load_digits_split(1).y_test == a.y_test).all()
    assert a.num_classes == 10
    assert abs(a.x_train.mean().item()) < 1e-5  # train columns centred...
    assert abs(a.x_test.mean().item()) > 1e-4  # ...test standardised with train statistics
    counts = np.bincount(a.y_test.numpy())
    assert counts.min() >= 35  # stratified: ~36 per class


def test_digits_bad_test_size():
    with pytest.raises(ValueError, match="test_size"):
        load_digits_split(0, test_size=1.5)


def test_atomic_write_gives_normal_permissions(tmp_path):
    import os

    p = atomic_write_bytes(tmp_path / "f", b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask


def test_file_lock_is_exclusive(tmp_path):
    # flock locks belong to an open file description, so two threads opening the lock file
    # contend exactly like two processes would
    import threading
    import time

    from xentlab.data.cache import file_lock

    lock, order, held = tmp_path / "sub" / ".x.lock", [], threading.Event()

    def first():
        with file_lock(lock):
            held.set()
            order.append("first in")
            time.sleep(0.3)
            order.append("first out")

    def second():
        held.wait()
        with file_lock(lock):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert order == ["first in", "first out", "second in"]
    assert lock.exists()
