"""Cache keys follow the code: a generator's key changes when its code changes, and only then.

The rule is in ``xentlab.data.cache``'s docstring ("The key rule"): each caching generator keys its
entries with ``code_key(SOURCE_DIGEST of the modules it runs, library versions)``.
"""

import importlib
import sys

import pytest

from xentlab.data import cache as cache_mod
from xentlab.data import captioned_shapes, images, shapes, speech, tokenizer
from xentlab.data.cache import code_key, source_digest
from xentlab.testing.cache_keys import upgrade_library


def _module(folder, body: str):
    """Import ``body`` as a fresh module ``keymod`` from ``folder`` (with the SOURCE_DIGEST line a
    generator module carries)."""
    folder.mkdir()
    (folder / "keymod.py").write_text(
        "from xentlab.data.cache import source_digest\nSOURCE_DIGEST = source_digest(__file__)\n" + body
    )
    sys.path.insert(0, str(folder))
    try:
        sys.modules.pop("keymod", None)
        return importlib.import_module("keymod")
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("keymod", None)


def test_source_digest_follows_the_file(tmp_path):
    a = _module(tmp_path / "a", "def gen():\n    return 1\n")
    b = _module(tmp_path / "b", "def gen():\n    return 1\n")
    c = _module(tmp_path / "c", "def gen():\n    return 2\n")
    assert a.SOURCE_DIGEST == b.SOURCE_DIGEST  # same code, same key (wherever the checkout lives)
    assert a.SOURCE_DIGEST != c.SOURCE_DIGEST  # a one-character change of the code changes it
    crlf = tmp_path / "crlf.py"  # a CRLF checkout of the same code keys the same
    crlf.write_bytes((tmp_path / "a" / "keymod.py").read_bytes().replace(b"\n", b"\r\n"))
    assert source_digest(crlf) == a.SOURCE_DIGEST


def test_code_key_combines_sources_and_library_versions(monkeypatch):
    assert code_key("aa", "bb", libraries=("numpy",)) == code_key("aa", "bb", libraries=("numpy",))
    assert code_key("aa", "bb") != code_key("aa", "bc")
    assert code_key("aa", "bb") != code_key("bb", "aa")
    base = code_key("aa", libraries=("numpy",))
    monkeypatch.setattr(cache_mod, "library_version", lambda name: "0.0-other")
    assert code_key("aa", libraries=("numpy",)) != base  # a library upgrade gives new keys
    with pytest.raises(ValueError):
        code_key()


def test_every_generator_module_hashes_its_own_source():
    for mod in (shapes, captioned_shapes, images, tokenizer, speech):
        assert mod.SOURCE_DIGEST == source_digest(mod.__file__), mod.__name__


def _keys():
    return {
        "shapes": shapes.ShapesConfig(n_per_class=2, size=16).key(0),
        "captioned": captioned_shapes.CaptionedShapesConfig(n_groups=2).key(0),
        "mnist5k": images.mnist5k_cache_name(),
        "digits": images.digits_images_cache_name(),
        "tokenizer": tokenizer._fingerprint(["some text"], 300, 2),
        "speech": speech.SpeechCorpusConfig().key(),
    }


def _clear():
    shapes.code_version.cache_clear()
    captioned_shapes.code_version.cache_clear()


# which generators' keys must move when a module's code changes (captioned shapes draws with shapes'
# templates, and shapes blurs with images' gaussian_blur)
DEPENDS = {
    shapes: {"shapes", "captioned"},
    images: {"shapes", "captioned", "mnist5k", "digits"},
    captioned_shapes: {"captioned"},
    tokenizer: {"tokenizer"},
    speech: {"speech"},
}


@pytest.mark.parametrize("module", list(DEPENDS), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_a_code_change_changes_exactly_the_dependent_keys(module, monkeypatch):
    _clear()
    before = _keys()
    assert _keys() == before  # same code, same keys
    monkeypatch.setattr(module, "SOURCE_DIGEST", "0" * 16)  # as if the module's source had changed
    _clear()
    try:
        after = _keys()
    finally:
        monkeypatch.undo()
        _clear()
    changed = {k for k in before if before[k] != after[k]}
    assert changed == DEPENDS[module]
    assert _keys() == before  # back to the real code: back to the same keys


def test_a_generator_library_upgrade_changes_the_key(monkeypatch):
    _clear()
    before = _keys()
    upgrade_library(monkeypatch, "matplotlib")
    _clear()
    try:
        after = _keys()
    finally:
        monkeypatch.undo()
        _clear()
    assert after["shapes"] != before["shapes"] and after["captioned"] != before["captioned"]
    assert after["tokenizer"] == before["tokenizer"]


def test_load_shapes_writes_under_the_code_keyed_name(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path))
    cfg = shapes.ShapesConfig(classes=("circle", "square"), n_per_class=2, size=16)
    shapes.load_shapes(cfg, seed=0)
    assert [p.name for p in tmp_path.glob("shapes-*.npz")] == [f"shapes-{cfg.key(0)}-v1.npz"]
