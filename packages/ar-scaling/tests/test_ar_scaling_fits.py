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
from ar_scaling.train import TrainConfig, cap_steps, eval_steps, lr_at

from xentlab.train.early_stopping import EarlyStopping


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
    # the cosine spans the CAP: half-way through the decay (step 10 + 45 of 90) the lr is the midpoint
    # lr * (0.1 + 0.9 * 0.5 * (1 + cos(pi/2))) = 0.55 lr, whatever step the run later stops at
    assert lr_at(55, 100, cfg) == pytest.approx(5.5e-3)
    const = TrainConfig(lr=1e-2, warmup=0.1, schedule="constant")
    assert lr_at(0, 100, const) == pytest.approx(1e-3)
    assert lr_at(9, 100, const) == lr_at(55, 100, const) == lr_at(99, 100, const) == pytest.approx(1e-2)
    assert cap_steps(TrainConfig(tokens=1000, batch=4, seq_len=16)) == 15  # 1000 // 64
    s = eval_steps(1171, 14)
    assert s[-1] == 1171 and s == sorted(set(s)) and len(s) <= 14
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(patience=0)


def test_early_stopping_rule_by_hand():
    # the package's rule is xentlab's Keras-style EarlyStopping (min mode); checked here with its settings
    # patience 2, min_delta 0.1. Reference starts at +inf, so 5.0 improves (ref 5.0, bad 0); 4.95 is not
    # 0.1 better (bad 1); 4.8 is (ref 4.8, bad 0); 4.75 and 4.71 are not (bad 1, then 2 -> stop)
    rule = EarlyStopping(patience=2, min_delta=0.1)
    assert [rule.update(v) for v in (5.0, 4.95, 4.8, 4.75, 4.71)] == [False, False, False, False, True]
    assert rule.best == 4.8
    # a rise counts as a failure too; min_delta = 0 means any strict decrease resets the count
    rule = EarlyStopping(patience=3, min_delta=0.0)
    assert [rule.update(v) for v in (1.0, 1.2, 0.99, 0.99, 1.5, 1.0)] == [False] * 5 + [True]


class _Uniform(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(*x.shape, 32)


def test_test_loss_of_uniform_model_is_log_v():
    # zero logits = the uniform distribution over 32 symbols: cross-entropy ln 32 at every position
    x = torch.randint(0, 32, (5, 16))
    assert train_mod.test_loss(_Uniform(), x, order=2, chunk=2) == pytest.approx(math.log(32), abs=1e-6)


def _fake_metrics(l_inf=1.0, n0=2e3, alpha=0.5, widths=(4e3, 8e3, 16e3, 32e3, 64e3), held=256e3, stop=None):
    """A seed's metrics for a ladder whose final losses follow the law exactly, with learning curves
    L(D) = final + 2 (D_final / D - 1)^0.5-ish shapes (decreasing in compute). ``stop`` maps a width's
    index to the step at which its run stopped early (its curve keeps the grid points up to there)."""
    m = {}
    per_step, cap, n_evals = 256, 256 * 400, 8
    steps = eval_steps(cap // per_step, n_evals)
    for i, n in enumerate([*widths, held]):
        e = f"L2-d{i:03d}"
        final = l_inf + (n0 / n) ** alpha
        last = (stop or {}).get(i, steps[-1])
        n_curve = sum(s <= last for s in steps)
        m.update({f"{e}/n_nonemb": n, f"{e}/final_loss": final, f"{e}/is_heldout": float(n == held),
                  f"{e}/tokens": last * per_step, f"{e}/cap_tokens": cap, f"{e}/tokens_per_step": per_step,
                  f"{e}/n_evals": n_evals, f"{e}/n_curve": n_curve, f"{e}/stop_val_loss": final,
                  f"{e}/entropy_rate": l_inf, f"{e}/marginal_entropy": 3.0})  # fmt: skip
        for j, s in enumerate(steps):
            v = final + 2.0 * (last / min(s, last) - 1) ** 0.5 / (1 + n / 1e4)
            m[f"{e}/curve_loss_{j:02d}"] = v if j < n_curve else m[f"{e}/curve_loss_{n_curve - 1:02d}"]
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


def test_ladder_reads_only_the_reached_curve_points_and_ends_at_the_stop():
    # width 0 stops at step 150 of a 400-step cap: its curve is the grid points <= 150, then the stop
    grid = eval_steps(400, 8)
    m = _fake_metrics(stop={0: 150})
    rows = ladder(m)
    reached = [s for s in grid if s <= 150]
    assert 150 not in grid  # so the stop is appended as the curve's last point
    np.testing.assert_allclose(rows[0]["compute"], 6 * 4e3 * 256 * np.array([*reached, 150], dtype=float))
    assert rows[0]["curve"][-1] == m["L2-d000/stop_val_loss"]
    assert rows[1]["compute"][-1] == pytest.approx(6 * 8e3 * 256 * 400)  # the others reach the cap
    res = analyse(m, n_boot=20)
    assert res["lN/l_inf"] == pytest.approx(1.0, rel=1e-3)  # L(N) uses final_loss, not the curve


def _tiny(**kw):
    from xentlab.data.markov_source import MarkovSourceConfig

    src = MarkovSourceConfig(vocab_size=8, order=2, support=2, zipf=1.0, seed=0)
    base = dict(hidden=8, layers=1, heads=2, tokens=2560, batch=16, seq_len=16, n_evals=3, eval_every=2,
                val_seqs=16, test_seqs=32)  # fmt: skip
    return TrainConfig(**{**base, **kw}), src


def test_train_one_is_deterministic_and_reports_its_units():
    cfg, src = _tiny()
    a, b = train_mod.train_one(cfg, src, seed=1), train_mod.train_one(cfg, src, seed=1)
    assert a["curve_loss"] == b["curve_loss"] and a["final_loss"] == b["final_loss"]
    assert a["cap_tokens"] == 2560 and a["tokens"] <= 2560
    assert a["compute"] == 6.0 * a["n_nonemb"] * a["tokens"]  # C = 6 N D, D = tokens until the stop
    assert a["curve_tokens"][-1] <= a["tokens"] and len(a["curve_tokens"]) == len(a["curve_loss"])
    assert a["best_tokens"] <= a["tokens"] and a["best_val_loss"] <= min(a["curve_loss"])
    c = train_mod.train_one(cfg, src, seed=2)
    assert c["final_loss"] != a["final_loss"]


def test_early_stop_point_and_test_sample_never_steers_training():
    # min_delta 10 nats: the first clock evaluation (step 2) sets the reference, the next one (step 4)
    # cannot beat it by 10, so with patience 1 the run stops at step 4 = 1024 tokens, before the cap
    cfg, src = _tiny(min_delta=10.0, patience=1)
    a = train_mod.train_one(cfg, src, seed=0)
    assert a["tokens"] == 4 * 256 and a["stopped_early"]
    assert a["best_tokens"] in (2 * 256, 4 * 256)
    # the test sample only scores the kept checkpoint: a different test sample size changes nothing
    # about when the run stops, which checkpoint is kept, or the validation curve
    b = train_mod.train_one(TrainConfig(**{**a["config"], "test_seqs": 64}), src, seed=0)
    for k in ("tokens", "best_tokens", "best_val_loss", "curve_loss", "stop_val_loss"):
        assert a[k] == b[k], k
    # with no stopping (huge patience) the run goes to the cap and reports it did
    full = train_mod.train_one(_tiny(patience=10**6)[0], src, seed=0)
    assert full["tokens"] == 2560 and not full["stopped_early"]


def test_test_loss_of_the_true_model_equals_its_log_prob():
    # an oracle whose logits are the source's true ln P(. | x_{t-2}, x_{t-1}) must score exactly the
    # true model's loss on the positions t >= order (checks the prediction/target alignment)
    from xentlab.data.markov_source import MarkovSource, MarkovSourceConfig

    src = MarkovSource(MarkovSourceConfig(vocab_size=8, order=2, support=3, seed=0))
    v = src.vocab_size
    flat = torch.from_numpy(np.log(src._flat))

    class _Oracle(torch.nn.Module):
        def forward(self, ids):
            out = torch.zeros(*ids.shape, v, dtype=torch.float64)
            out[:, 1:] = flat[ids[:, :-1] * v + ids[:, 1:]]  # logits at t predict x_{t+1}
            return out

    x = torch.from_numpy(src.sample_batch(7, 16, 11))
    want = float(-src.log_prob(x.numpy()).mean())
    # abs 1e-6: test_loss casts the logits to float32 (an off-by-one would be off by O(0.1))
    assert train_mod.test_loss(_Oracle(), x, order=2, chunk=3) == pytest.approx(want, abs=1e-6)
