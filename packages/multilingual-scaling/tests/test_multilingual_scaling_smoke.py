"""The whole reproduce.py at smoke scale (in-process), training determinism, and the normaliser diagnostic's
runs against the study's when each is computed alone."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from multilingual_scaling.experiment import run_seed, world_config
from multilingual_scaling.families import make_world
from multilingual_scaling.normaliser import run_normaliser
from multilingual_scaling.train import TrainConfig, train_mixture

from xentlab.testing import load_reproduce, run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"


def test_training_is_deterministic():
    torch.set_num_threads(1)
    world = make_world(world_config()["world"])
    cfg = TrainConfig(hidden=8, heads=2, tokens=1024, test_seqs=8)
    a = train_mixture(world, (0.2, 0.3, 0.5), cfg, seed=0)
    b = train_mixture(world, (0.2, 0.3, 0.5), cfg, seed=0)
    assert a["losses"] == b["losses"] and all(math.isfinite(v) for v in a["losses"])


def test_smoke(tmp_path):
    result = run_smoke(REPRO, tmp_path, extra_args=("--workers", "1"))
    m = result["metrics"]
    for k in (
        "indep_spread_A",
        "indep_perm_p_A",
        "indep_noise_A",
        "control_spread_A",
        "gamma_max_rel_diff",
        "transfer_gap",
        "p_pstar_A",
    ):
        assert f"study/{k}" in m
    p = [m[f"study/p_pstar_{n}"]["mean"] for n in "ABC"]
    assert abs(sum(p) - 1) < 1e-9
    assert (tmp_path / "loss_vs_ratio.png").exists() and (tmp_path / "independence_transfer.png").exists()
    # the normaliser diagnostic reproduces the study's fit-size fits and its p* held-out run exactly
    for k in ("d_H", "d_K", "d_raw", "pred_d_H", "p_pK_A"):
        assert f"normaliser/{k}" in m
    assert m["check/normaliser_refit_max_abs_diff"]["mean"] == 0.0
    assert m["check/normaliser_pH_test_max_abs_diff"]["mean"] == 0.0
    assert (tmp_path / "normaliser.png").exists()


def test_normaliser_alone_reproduces_the_study_runs(tmp_path, monkeypatch):
    # In one run the diagnostic reads the study's d32 and p* runs through shared_runs, so the checks above
    # compare those runs with themselves. Here the study and the diagnostic each run alone, on an empty
    # cache of their own: trained independently, the refit and the p* run must still agree bit for bit.
    torch.set_num_threads(1)
    repro = load_reproduce(REPRO)
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "study-cache"))
    study = run_seed(repro.SMOKE, seed=0)
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "normaliser-cache"))
    alone = run_normaliser(repro._normaliser_cfg(repro.SMOKE), seed=0)
    for n in "ABC":
        assert alone[f"gamma_{n}"] == study[f"s1_gamma_{n}"] and alone[f"K_{n}"] == study[f"s1_K_{n}"]
        assert alone[f"p_pH_{n}"] == study[f"p_pstar_{n}"]
        assert alone[f"test_pH_L_{n}"] == study[f"big_pstar_L_{n}"]
