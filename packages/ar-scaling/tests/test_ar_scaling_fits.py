"""The frontier, the learning-rate schedule, the test loss, and the per-seed analysis on synthetic
ladders whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ar_scaling import train as train_mod
from ar_scaling.analysis import analyse, ladder
from ar_scaling.frontier import Curve, envelope, n_opt_steps
from ar_scaling.train import TrainConfig, eval_steps, lr_at


def test_envelope_switches_to_the_larger_model_where_curves_cross():
    # two straight lines in (ln C, L): small model 3 - 0.1 ln(C/1e6) on [1e6, 1e10];
    # big model 4 - 0.3 ln(C/1e7) on [1e7, 1e11]. They cross where 3 - 0.1 u = 4 - 0.3 (u - ln 10),
    # u = ln(C/1e6): 0.2 u = 1 + 0.3 ln 10 -> C* = 1e6 exp(5 + 1.5 ln 10) = 1e6 * e^5 * 10^1.5
    cs = np.geomspace(1e6, 1e10, 9)
    cb = np.geomspace(1e7, 1e11, 9)
    small = Curve(1e3, cs, 3 - 0.1 * np.log(cs / 1e6))
    big = Curve(1e4, cb, 4 - 0.3 * np.log(cb / 1e7))
    front = envelope([small, big], n_grid=400)
    c_star = 1e6 * math.exp(5) * 10**1.5
    assert np.all(front.n_opt[front.compute < c_star / 1.1] == 1e3)
    assert np.all(front.n_opt[front.compute > c_star * 1.1] == 1e4)
    steps_c, steps_n = n_opt_steps(front)
    assert steps_c.size == 1
    assert steps_c[0] == pytest.approx(c_star, rel=0.03)  # grid spacing is 1.2% in C
    assert steps_n[0] == pytest.approx(math.sqrt(1e3 * 1e4))
    # the envelope is the minimum of the two wherever both exist
    mid = (front.compute > 1e7) & (front.compute < 1e10)
    lo = np.minimum(3 - 0.1 * np.log(front.compute[mid] / 1e6), 4 - 0.3 * np.log(front.compute[mid] / 1e7))
    np.testing.assert_allclose(front.loss[mid], lo, atol=1e-9)


def test_envelope_is_non_increasing_where_a_curve_ends_below_the_next():
    # the small model ends at C = 1e8 with loss 1.0; the big one starts at 1e8 with 2.0 and, linear in
    # ln C, reaches 0.9 at 1e10, so it crosses 1.0 at C* = 1e8 * 10^(2 * 1.0 / 1.1): in between, the best
    # loss for budget C is still the small model's end point 1.0
    small = Curve(1e3, np.array([1e6, 1e8]), np.array([3.0, 1.0]))
    big = Curve(1e5, np.array([1e8, 1e10, 1e12]), np.array([2.0, 0.9, 0.5]))
    front = envelope([small, big], n_grid=101)
    assert np.all(np.diff(front.loss) <= 0)
    c_star = 1e8 * 10 ** (2 / 1.1)
    between = (front.compute > 1e8) & (front.compute < c_star / 1.01)
    assert np.all(front.loss[between] == 1.0) and np.all(front.n_opt[between] == 1e3)
    assert front.n_opt[-1] == 1e5 and front.loss[-1] == pytest.approx(0.5)


def test_envelope_errors():
    with pytest.raises(ValueError, match="at least one"):
        envelope([])
    with pytest.raises(ValueError, match="increasing"):
        envelope([Curve(1.0, np.array([2.0, 1.0]), np.array([1.0, 0.5]))])


def test_lr_schedule_and_eval_steps():
    cfg = TrainConfig(lr=1e-2, warmup=0.1, final_lr_frac=0.1)
    assert lr_at(0, 100, cfg) == pytest.approx(1e-3)  # warm-up: (step + 1) / 10 of the peak
    assert lr_at(9, 100, cfg) == pytest.approx(1e-2)
    assert lr_at(10, 100, cfg) == pytest.approx(1e-2)  # cosine starts at the peak
    assert lr_at(100, 100, cfg) == pytest.approx(1e-3)  # ... and ends at final_lr_frac of it
    s = eval_steps(1171, 14)
    assert s[-1] == 1171 and s == sorted(set(s)) and len(s) <= 14


class _Uniform(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(*x.shape, 32)


def test_test_loss_of_uniform_model_is_log_v():
    # zero logits = the uniform distribution over 32 symbols: cross-entropy ln 32 at every position
    x = torch.randint(0, 32, (5, 16))
    assert train_mod.test_loss(_Uniform(), x, order=2, chunk=2) == pytest.approx(math.log(32), abs=1e-6)


def _fake_metrics(l_inf=1.0, n0=2e3, alpha=0.5, widths=(4e3, 8e3, 16e3, 32e3, 64e3), held=256e3):
    """A seed's metrics for a ladder whose final losses follow the law exactly, with learning curves
    L(D) = final + 2 (D_final / D - 1)^0.5-ish shapes (decreasing in compute)."""
    m = {}
    per_step, tokens, n_evals = 256, 256 * 400, 8
    steps = eval_steps(tokens // per_step, n_evals)
    for i, n in enumerate([*widths, held]):
        e = f"L2-d{i:03d}"
        final = l_inf + (n0 / n) ** alpha
        m.update({f"{e}/n_nonemb": n, f"{e}/final_loss": final, f"{e}/is_heldout": float(n == held),
                  f"{e}/tokens": tokens, f"{e}/tokens_per_step": per_step, f"{e}/n_evals": n_evals,
                  f"{e}/entropy_rate": l_inf, f"{e}/marginal_entropy": 3.0})  # fmt: skip
        for j, s in enumerate(steps):
            m[f"{e}/curve_loss_{j:02d}"] = final + 2.0 * (steps[-1] / s - 1) ** 0.5 / (1 + n / 1e4)
    return m


def test_analysis_recovers_an_exact_law_and_predicts_the_held_out_size():
    m = _fake_metrics()
    rows = ladder(m)
    assert [r["heldout"] for r in rows] == [False] * 5 + [True]
    res = analyse(m, n_boot=20)
    assert res["lN/l_inf"] == pytest.approx(1.0, rel=1e-3)
    assert res["lN/alpha"] == pytest.approx(0.5, rel=1e-3)
    assert res["lN/r2"] == pytest.approx(1.0, abs=1e-9)
    assert res["lN/l_inf_abs_rel_err"] < 1e-3
    assert res["lN/heldout_abs_rel_err"] < 1e-4
    assert res["lN/heldout_obs"] == pytest.approx(1.0 + (2e3 / 256e3) ** 0.5)
    # compute of the last curve point is 6 N D
    assert rows[0]["compute"][-1] == pytest.approx(6 * 4e3 * 256 * 400)
    assert res["nopt/n_steps"] >= 1


def test_train_one_is_deterministic_and_reports_its_units():
    from xentlab.data.markov_source import MarkovSourceConfig

    src = MarkovSourceConfig(vocab_size=8, order=2, support=2, zipf=1.0, seed=0)
    cfg = TrainConfig(hidden=8, layers=1, heads=2, tokens=2560, batch=16, seq_len=16, n_evals=3,
                      test_seqs=32, curve_seqs=16)  # fmt: skip
    a, b = train_mod.train_one(cfg, src, seed=1), train_mod.train_one(cfg, src, seed=1)
    assert a["curve_loss"] == b["curve_loss"] and a["final_loss"] == b["final_loss"]
    assert a["tokens"] == 2560 and a["compute"] == 6.0 * a["n_nonemb"] * 2560  # C = 6 N D
    assert a["curve_tokens"][-1] == 2560 and len(a["curve_tokens"]) == len(a["curve_loss"])
    c = train_mod.train_one(cfg, src, seed=2)
    assert c["final_loss"] != a["final_loss"]
    with pytest.raises(ValueError, match="curve_seqs"):
        train_mod.train_one(TrainConfig(hidden=8, layers=1, heads=2, test_seqs=4, curve_seqs=8), src, 0)
