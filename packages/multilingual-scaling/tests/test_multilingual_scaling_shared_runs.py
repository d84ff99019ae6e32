"""The runs that the study and the normaliser diagnostic share (``shared_runs``): a cached run is the run,
bit for bit; the second unit to ask reads it instead of training; the key follows the run's inputs, the code
that shapes it and the torch / numpy versions (xentlab.data.cache, "The key rule")."""

from __future__ import annotations

import importlib
import math

import pytest
import torch
from multilingual_scaling import shared_runs
from multilingual_scaling.experiment import world_config
from multilingual_scaling.families import make_world
from multilingual_scaling.train import TrainConfig, train_mixture

from xentlab.testing.cache_keys import assert_key_follows, assert_key_follows_library

WORLD = world_config()["world"]
TC = TrainConfig(hidden=8, heads=2, tokens=1024, test_seqs=8)
P = (0.2, 0.3, 0.5)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)


@pytest.mark.parametrize("score_val", [False, True])
def test_a_cached_run_is_the_run_bit_for_bit_and_is_trained_once(monkeypatch, score_val):
    direct = train_mixture(make_world(WORLD), P, TC, 4, score_val=score_val)
    calls = []
    real = shared_runs.train_mixture
    monkeypatch.setattr(shared_runs, "train_mixture", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = shared_runs.shared_run(WORLD, P, TC, 4, score_val=score_val)
    second = shared_runs.shared_run(WORLD, list(P), TC, 4, score_val=score_val)
    assert len(calls) == 1  # the second call read the first one's result
    assert first == second == direct  # floats equal to the last bit (JSON keeps a float's repr)
    assert ("val_losses" in first) is score_val


def test_key_follows_the_inputs():
    k = shared_runs.run_key(WORLD, P, TC, 0)
    assert shared_runs.run_key(WORLD, [0.2, 0.3, 0.5], TC, 0) == k
    others = [
        shared_runs.run_key(WORLD, (0.2, math.nextafter(0.3, 1.0), 0.5), TC, 0),  # one ulp of a ratio
        shared_runs.run_key(WORLD, P, TC, 1),
        shared_runs.run_key(WORLD, P, TrainConfig(hidden=8, heads=2, tokens=2048, test_seqs=8), 0),
        shared_runs.run_key(WORLD, P, TC, 0, score_val=True),
        shared_runs.run_key(world_config()["control_world"], (0.2, 0.3, 0.5, 0.0), TC, 0),
    ]
    assert len({k, *others}) == len(others) + 1


@pytest.mark.parametrize("name", shared_runs.CODE_MODULES)
def test_key_follows_the_code(monkeypatch, name):
    # an edit of any module that shapes a run gives a new key (and the old key back when it is undone);
    # modules without a SOURCE_DIGEST are hashed from their file (xentlab.lm.code.module_digest)
    from xentlab.testing.cache_keys import assert_module_edit_changes_key

    importlib.import_module(name)
    assert_module_edit_changes_key(lambda: shared_runs.run_key(WORLD, P, TC, 0), monkeypatch, name)


@pytest.mark.parametrize("lib", shared_runs.LIBRARIES)
def test_key_follows_the_libraries(monkeypatch, lib):
    assert_key_follows_library(lambda: shared_runs.run_key(WORLD, P, TC, 0), monkeypatch, lib)


def test_this_module_is_in_its_own_key(monkeypatch):
    assert_key_follows(lambda: shared_runs.run_key(WORLD, P, TC, 0), monkeypatch, shared_runs)
