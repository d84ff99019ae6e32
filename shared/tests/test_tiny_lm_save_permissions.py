"""``save_tiny_lm`` gives the model folder and its files the permissions every other cache file has
(``xentlab.data.cache.atomic_write_bytes``: files 0666 & ~umask, so folders 0777 & ~umask), not the 0700
folder of ``tempfile.mkdtemp`` nor the 0600 ``model.safetensors`` that safetensors writes: a cache shared
by several users (or read by another account) can load the model like any other cached file."""

import os
import stat

import pytest

from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm, load_tiny_lm, save_tiny_lm

SMALL = dict(hidden=16, layers=1, heads=2, kv_heads=1, intermediate=32, vocab_size=64)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set a known umask for the test and restore the caller's afterwards."""

    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077], ids=oct)
def test_saved_model_has_normal_permissions(tmp_path, umask, mask):
    umask(mask)
    model = build_tiny_lm(TinyLMConfig(**SMALL), seed=0)
    path = tmp_path / "m"
    save_tiny_lm(model, path)
    save_tiny_lm(model, path)  # overwriting keeps them too
    assert _mode(path) == 0o777 & ~mask, oct(_mode(path))
    files = sorted(p for p in path.rglob("*") if p.is_file())
    assert any(p.name == "model.safetensors" for p in files)
    for p in files:
        assert _mode(p) == 0o666 & ~mask, f"{p.name}: {oct(_mode(p))}"
    for d in (p for p in path.rglob("*") if p.is_dir()):
        assert _mode(d) == 0o777 & ~mask, f"{d.name}: {oct(_mode(d))}"
    assert load_tiny_lm(path) is not None  # still a loadable model
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.")]  # no temp folder left
