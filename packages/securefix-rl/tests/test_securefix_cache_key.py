"""The securefix unit's resume key follows the code (xentlab.data.cache, "The key rule"): same code, config
and seed, same key; an edit of a module the unit runs (xentlab.rl.ppo above all, or this package's reward),
or a library upgrade, a new key. Before the fix the version was the default "1" and the key named the
config only, so a restarted run would have kept units computed by the old ppo_advantages."""

import dataclasses
from pathlib import Path

import pytest
from securefix_rl import code

from xentlab.repro.units import unit_key
from xentlab.testing import load_reproduce
from xentlab.testing.cache_keys import assert_key_follows_library, assert_module_edit_changes_key


@pytest.fixture(scope="module")
def repro():
    return load_reproduce(Path(__file__).parents[1] / "reproduce.py")


@pytest.fixture(autouse=True)
def _real_code_keys(monkeypatch):
    """Undo the test's patches, then drop the memoised code hash computed under them, so no later test
    (or smoke run in this process) reads a key of patched code."""
    yield
    monkeypatch.undo()
    code.unit_code.cache_clear()


def _key(repro, scale: str = "cpu", seed: int = 0) -> str:
    """The runner's key of a unit, with the version recomputed from the code as reproduce.py does."""
    code.unit_code.cache_clear()
    exp = dataclasses.replace(repro.EXPERIMENTS[0], version=code.unit_version())
    return unit_key(exp, exp.configs[scale], seed, scale=scale)


def test_reproduce_uses_the_code_version(repro):
    exp = repro.EXPERIMENTS[0]
    assert exp.version == code.unit_version()
    assert exp.version.startswith(f"{code.PROTOCOL}-") and len(exp.version) > 2


def test_the_key_is_stable_and_names_config_and_seed(repro):
    before = _key(repro)
    assert _key(repro) == before
    assert _key(repro, seed=1) != before and _key(repro, scale="smoke") != before


@pytest.mark.parametrize(
    "name",
    [
        "xentlab.rl.ppo",  # the defect: the whitening fix must invalidate the old units
        "xentlab.rl.rollout",
        "xentlab.data.tokenizer",
        "xentlab.models.tiny_lm",
        "xentlab.lm.train",
        "securefix_rl.reward",
        "securefix_rl.train",
        "securefix_rl.checker",
    ],
)
def test_a_module_edit_changes_the_key(repro, name, monkeypatch):
    assert_module_edit_changes_key(lambda: _key(repro), monkeypatch, name)


@pytest.mark.parametrize("library", ["codebleu", "torch", "tokenizers"])
def test_a_library_upgrade_changes_the_key(repro, library, monkeypatch):
    assert_key_follows_library(lambda: _key(repro), monkeypatch, library)


def test_every_unit_module_is_hashed():
    # a module added to the package must join the key (figures.py only draws stored results)
    src = Path(code.__file__).parent
    names = {f"securefix_rl.{p.stem}" for p in src.glob("*.py")} - {
        "securefix_rl.__init__",
        "securefix_rl.figures",
    }
    assert names == set(code.PACKAGE_MODULES)
