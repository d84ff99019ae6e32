"""Models, the two experiment drivers (determinism, bad input) and the smoke run of reproduce.py."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from ghosts.data import load_digits
from ghosts.models import ARCHITECTURES, build_model
from ghosts.phase import PhaseConfig, first_crossing, phase_runs
from ghosts.spike import SpikeConfig, run_spike

from xentlab.testing import run_smoke


@pytest.fixture(scope="module")
def digits():
    return load_digits(split_seed=0, test_size=0.2)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_models_map_64_pixels_to_10_logits(arch):
    torch.manual_seed(0)
    out = build_model(arch)(torch.rand(5, 64))
    assert out.shape == (5, 10) and torch.isfinite(out).all()


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown architecture 'resnet'"):
        build_model("resnet")


def test_digits_use_the_official_scaling(digits):
    # the official per-class split: round(0.2 * class size) test rows per class, 359 in all (session 11;
    # scikit-learn's stratified split gave 1437 / 360)
    assert digits.x_train.shape == (1438, 64) and digits.x_test.shape == (359, 64)
    assert float(digits.x_train.min()) == 0.0 and float(digits.x_train.max()) == 1.0  # pixels / 16
    counts = torch.bincount(digits.y_test, minlength=10)
    assert int(counts.min()) >= 35  # stratified: about 36 test digits per class


def test_spike_run_is_deterministic_and_the_controller_keeps_r_le_1(digits):
    cfg = SpikeConfig(steps=12, spike_at=4, spike_mul=1000.0)
    first = run_spike("rho", 1e-2, digits, seed=3, cfg=cfg)
    second = run_spike("rho", 1e-2, digits, seed=3, cfg=cfg)
    assert first == second
    assert len(first["acc"]) == 12 and not first["diverged"]
    assert all(t <= r * (1 + 1e-12) for t, r in zip(first["tau"], first["rho"]))
    plain = run_spike("plain", 1e-2, digits, seed=3, cfg=cfg)
    assert plain["tau"][:4] == pytest.approx(first["tau"][:4])  # before the spike the cap is idle here
    assert max(t / r for t, r in zip(plain["tau"][4:], plain["rho"][4:])) > 1  # after it, plain has r > 1


def test_phase_runs_are_deterministic(digits):
    cfg = PhaseConfig(archs=["linear"], steps_scale=0.05, random_dirs=1, eval_n=64, r_grid=[0.1, 1.0, 10.0])
    first = phase_runs(cfg, digits, seed=1)
    assert first == phase_runs(cfg, digits, seed=1)
    assert [r["direction"] for r in first] == ["grad", "rand0"]
    assert all(len(r["acc_retained"]) == 3 for r in first)


def test_first_crossing():
    grid = [0.1, 1.0, 2.0]
    assert first_crossing(grid, [1.0, 1.2, 3.0], 1.1) == 1.0
    assert first_crossing(grid, [1.0, 0.9, 0.4], 0.5, below=True) == 2.0
    assert first_crossing(grid, [1.0, 1.0, 1.0], 1.1) == math.inf


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda d: run_spike("sgd", 1e-2, d, 0, SpikeConfig(steps=2)), "unknown method"),
        (lambda d: run_spike("rho", 0.0, d, 0, SpikeConfig(steps=2)), "base_lr"),
    ],
)
def test_spike_bad_input(digits, call, match):
    with pytest.raises(ValueError, match=match):
        call(digits)


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path)
    ids = {c["id"] for c in result["claims"]}
    assert {
        "phase-no-collapse-below-r1",
        "spike-x1000-rho-survives",
        "spike-x10000-clip-collapses",
        "tempfp-onset-spread-shrinks",
        "tempfp-onset-cv-shrinks",
        "archgrid-rho-survives",
        "archgrid-cnnbn-plain-collapses",
    } <= ids
    assert sorted(result["figures"]) == sorted(
        [
            "phase_accuracy_vs_r.png",
            "phase_loss_vs_r.png",
            "lrspike_accuracy.png",
            "lrspike_tau_vs_rho.png",
            "tempfp_fingerprint.png",
            "archgrid_spike.png",
        ]
    )
