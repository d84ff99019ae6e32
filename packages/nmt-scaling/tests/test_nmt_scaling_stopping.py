"""The early-stopping rule (by hand), the best-checkpoint bookkeeping, and train_one's use of both: it
stops where the rule says, and the test loss it reports is that of the best-validation checkpoint."""

from __future__ import annotations

import math

import pytest
import torch
from nmt_scaling import train as train_mod
from nmt_scaling.stopping import EarlyStopping, StopRule, plateaued
from nmt_scaling.train import TrainConfig, train_one


def test_plateaued_by_hand():
    # patience 2, min_delta 0.01: the last two must beat the best before them (1.0) by more than 0.01
    assert not plateaued([1.0, 0.9], 2, 0.01)  # not more than `patience` evaluations yet
    assert not plateaued([1.0, 0.995, 0.985], 2, 0.01)  # 0.985 < 1.0 - 0.01
    assert plateaued([1.0, 0.995, 0.991], 2, 0.01)  # 0.991 >= 0.99: the improvement is too small
    assert plateaued([1.0, 1.2, 1.1], 2, 0.0)  # no improvement at all
    assert not plateaued([1.0, 0.5, 0.6, 0.45], 2, 0.01)  # 0.45 < 0.5 - 0.01
    assert plateaued([1.0, 0.5, 0.6, 0.495], 2, 0.01)  # 0.495 >= 0.49


def test_stop_rule_errors():
    with pytest.raises(ValueError, match="multiple of eval_every"):
        StopRule(eval_every=25, patience=4, min_delta=0.003, max_steps=990)
    with pytest.raises(ValueError, match="patience"):
        StopRule(eval_every=25, patience=0, min_delta=0.003, max_steps=1000)
    with pytest.raises(ValueError, match="min_delta"):
        StopRule(eval_every=25, patience=4, min_delta=-1.0, max_steps=1000)


def test_early_stopping_keeps_the_earliest_best_checkpoint_and_restores_it():
    model = torch.nn.Linear(2, 1)
    stop = EarlyStopping(StopRule(eval_every=1, patience=2, min_delta=0.0, max_steps=10))
    fired = []
    for step, loss in enumerate([3.0, 2.0, 2.0, 2.5], start=1):
        with torch.no_grad():
            model.weight.fill_(float(step))
        fired.append(stop.update(step, loss, model))
    # after step 4 the last two (2.0, 2.5) do not beat 2.0: the rule fires; the best is step 2 (tie: earliest)
    assert fired == [False, False, False, True] and stop.converged
    assert stop.best_step == 2 and stop.best_loss == 2.0 and stop.steps == [1, 2, 3, 4]
    stop.restore(model)
    assert torch.all(model.weight == 2.0)
    with pytest.raises(FloatingPointError, match="step 5"):
        stop.update(5, math.nan, model)


def test_early_stopping_at_the_cap_is_not_convergence():
    model = torch.nn.Linear(2, 1)
    stop = EarlyStopping(StopRule(eval_every=5, patience=3, min_delta=0.0, max_steps=15))
    assert [stop.update(s, 1.0 / s, model) for s in (5, 10, 15)] == [False, False, True]
    assert not stop.converged and stop.best_step == 15


def test_train_one_scores_the_best_validation_checkpoint(monkeypatch):
    cfg = TrainConfig(enc_layers=1, dec_layers=1, d_model=16, heads=2, enc_ffn=32, dec_ffn=32, batch=8,
                      lr=3e-3, warmup_steps=2, max_steps=12, eval_every=2, patience=2, min_delta=0.0,
                      valid_sents=16, test_sents=24)  # fmt: skip
    scored = []
    real = train_mod.test_loss

    def spy(model, src, tgt, chunk=500):
        out = real(model, src, tgt, chunk)
        scored.append((src.shape[0], out, {k: v.clone() for k, v in model.state_dict().items()}))
        return out

    monkeypatch.setattr(train_mod, "test_loss", spy)
    out = train_one(cfg, seed=0)
    valid = [v for n, v, _ in scored if n == 16]
    test = [(v, sd) for n, v, sd in scored if n == 24]
    assert len(test) == 1 and out["final_loss"] == test[0][0]  # the test sample is scored exactly once
    assert out["curve_valid"] == valid and out["curve_steps"] == list(range(2, out["stop_step"] + 1, 2))
    best = min(range(len(valid)), key=valid.__getitem__)
    assert out["best_step"] == out["curve_steps"][best] and out["best_valid_loss"] == valid[best]
    # the scored weights are the best evaluation's (its state dict was captured by the spy)
    for k, v in scored[best][2].items():
        assert torch.equal(v, test[0][1][k])
    # the split-half losses (the hard-pair pilot's noise floor) are the best checkpoint's on 8 + 8
    # sentences; the full-sample loss is their token-weighted mean, so it lies between them
    halves = [v for n, v, _ in scored if n == 8]
    assert out["best_valid_halves"] == halves and len(halves) == 2
    assert min(halves) - 1e-6 <= out["best_valid_loss"] <= max(halves) + 1e-6
    # determinism: the same seed gives the same run
    monkeypatch.setattr(train_mod, "test_loss", real)
    again = train_one(cfg, seed=0)
    assert again["final_loss"] == out["final_loss"] and again["stop_step"] == out["stop_step"]
