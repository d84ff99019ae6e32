"""The normaliser diagnostic: each reading's objective coefficients, its p*, the scorings and the d_s sign
convention against hand derivations (float64), and one tiny unit end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from multilingual_scaling.experiment import world_config
from multilingual_scaling.families import make_world
from multilingual_scaling.law import optimal_ratios
from multilingual_scaling.normaliser import (
    reading_coefficients,
    relative_difference,
    run_normaliser,
    score_normalisers,
)
from multilingual_scaling.train import TrainConfig, train_mixture

from xentlab.testing import assert_close


def test_reading_coefficients_by_hand():
    # c = w K / R: pH divides by H, pK by K itself (so c = w: K cancels)
    k, h, w = [1.2, 1.5, 2.0], [0.6, 1.0, 1.6], [0.5, 0.25, 0.25]
    c = reading_coefficients(k, h, w)
    assert_close(c["pH"], np.array([0.5 * 2.0, 0.25 * 1.5, 0.25 * 1.25]), rtol=1e-15, atol=0.0)
    assert_close(c["pK"], np.array(w), rtol=1e-15, atol=0.0)


def test_pk_depends_on_gamma_only_and_equal_gammas_give_closed_forms():
    # With equal gamma g the KKT conditions give p_i proportional to c_i^(1/(g+1)) (law.py docstring), so
    # pK (c = w = 1/3 each) is uniform whatever K and H are, while pH is proportional to (K_i/H_i)^(1/(g+1)).
    g = np.full(3, 0.2)
    w = np.full(3, 1 / 3)
    for k, h in (([1.2, 1.5, 2.0], [0.6, 1.0, 1.6]), ([5.0, 0.3, 1.0], [1.0, 1.0, 0.2])):
        c = reading_coefficients(k, h, w)
        assert_close(optimal_ratios(c["pK"], g), np.full(3, 1 / 3), rtol=1e-10, atol=0.0)
        ref = (np.array(k) / np.array(h)) ** (1 / 1.2)
        assert_close(optimal_ratios(c["pH"], g), ref / ref.sum(), rtol=1e-10, atol=0.0)


def test_scorings_and_sign_convention():
    r = score_normalisers([1.2, 1.5, 2.0], [0.6, 1.0, 1.6])
    assert r["H"].tolist() == [0.6, 1.0, 1.6] and r["K"].tolist() == [1.2, 1.5, 2.0]
    assert r["raw"].tolist() == [1.0, 1.0, 1.0]
    # d_s = obj(pH) / obj(pK) - 1: 1.98 / 2.0 - 1 = -0.01 (pH lower, negative)
    assert abs(relative_difference(1.98, 2.0) + 0.01) <= 1e-15


def test_validation_scoring_leaves_the_test_losses_unchanged():
    torch.set_num_threads(1)
    world = make_world(world_config()["world"])
    cfg = TrainConfig(hidden=8, heads=2, tokens=1024, test_seqs=8)
    a = train_mixture(world, (0.2, 0.3, 0.5), cfg, seed=3)
    b = train_mixture(world, (0.2, 0.3, 0.5), cfg, seed=3, score_val=True)
    assert a["losses"] == b["losses"] and "val_losses" not in a
    assert len(b["val_losses"]) == 3 and b["val_losses"] != b["losses"]  # another sample


@pytest.fixture(scope="module")
def tiny_unit() -> dict:
    torch.set_num_threads(1)
    tc = TrainConfig(hidden=8, heads=2, tokens=2048, test_seqs=16)
    cfg = {"world": world_config()["world"], "weights": [1 / 3] * 3, "fit": tc.__dict__, "large": tc.__dict__}
    return run_normaliser(cfg, seed=5)


def test_unit_pk_is_the_gamma_only_optimum_and_law_predictions_favour_each_own_reading(tiny_unit):
    m = tiny_unit
    gam = np.maximum([m[f"gamma_{n}"] for n in "ABC"], 1e-3)
    pk = np.array([m[f"p_pK_{n}"] for n in "ABC"])
    assert_close(pk, optimal_ratios(np.full(3, 1 / 3), gam), rtol=1e-12, atol=0.0)
    for r in ("pH", "pK"):
        assert abs(sum(m[f"p_{r}_{n}"] for n in "ABC") - 1) <= 1e-9
    # each p* minimises its own objective at the fit size, so the law predicts d_H <= 0 <= d_K
    assert m["pred_d_H"] <= 1e-12 and m["pred_d_K"] >= -1e-12
    for s in ("H", "K", "raw"):
        assert abs(m[f"d_{s}"] - (m[f"obj_{s}_pH"] / m[f"obj_{s}_pK"] - 1)) <= 1e-12
        assert math.isfinite(m[f"d_{s}"])
    # obj_K of pK by hand: sum_i w_i L_i^val / K_i
    ref = sum(m[f"val_pK_L_{n}"] / m[f"K_{n}"] for n in "ABC") / 3
    assert abs(m["obj_K_pK"] - ref) <= 1e-12
