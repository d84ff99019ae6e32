"""Early stopping (FuxiCTR's rule) and the training loop's stop / restore-best behaviour."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from fcn import train
from fcn.data import SyntheticConfig, make_synthetic
from fcn.train import fuxictr_stopper


def test_early_stopping_rule_by_hand():
    # patience 2: 0.6 (best), 0.7 (best), 0.65 (bad 1), 0.7 + 5e-7 (< best + 1e-6: bad 2 -> stop)
    es = fuxictr_stopper(patience=2)
    assert [es.update(v) or es.improved for v in (0.6, 0.7)] == [True, True]
    assert not es.update(0.65) and not es.improved
    assert es.update(0.7 + 5e-7) and not es.improved
    assert es.best == 0.7
    # FuxiCTR's tie rule: exactly best + 1e-6 is an improvement
    es = fuxictr_stopper(patience=1)
    es.update(0.5)
    assert not es.update(0.5 + 1e-6) and es.improved


def test_early_stopping_counter_resets_on_improvement():
    es = fuxictr_stopper(patience=2)
    for v in (0.5, 0.4, 0.6, 0.55):  # bad, then a new best resets the count, then bad once
        stop = es.update(v)
    assert not stop and es.bad == 1 and es.best == 0.6
    with pytest.raises(ValueError, match="patience"):
        fuxictr_stopper(patience=0)


def test_fit_stops_on_patience_and_restores_best_weights(monkeypatch):
    """Scripted val AUCs 0.6, 0.7, 0.65, 0.64, 0.9: patience 2 stops after epoch 4, never sees 0.9,
    and the test pass must use the weights saved after epoch 2 (the best), not the last ones."""
    data = make_synthetic(replace(SyntheticConfig(), n_train=600, n_valid=200, n_test=300))
    scripted = iter([0.6, 0.7, 0.65, 0.64, 0.9])
    seen_weights = []
    real_auc, real_predict = train.roc_auc_score, train.predict

    def fake_auc(y, p):
        return next(scripted) if len(y) == len(data.y_valid) else real_auc(y, p)  # test split: real AUC

    def spy_predict(model, x, **kw):
        seen_weights.append(torch.cat([q.detach().flatten() for q in model.parameters()]))
        return real_predict(model, x, **kw)

    monkeypatch.setattr(train, "roc_auc_score", fake_auc)
    monkeypatch.setattr(train, "predict", spy_predict)
    cfg = {"emb_dim": 4, "lr": 1e-2, "batch_size": 128, "max_epochs": 100, "patience": 2}
    out = train.fit("lr", data, cfg, seed=0)
    assert out["epochs"] == 4 and out["best_epoch"] == 2 and out["stopped_early"]
    assert out["val_auc"] == 0.7 and out["val_curve"] == [0.6, 0.7, 0.65, 0.64]
    # seen_weights: 4 validation passes, then the test pass
    assert len(seen_weights) == 5
    torch.testing.assert_close(seen_weights[4], seen_weights[1], rtol=0, atol=0)
    assert not torch.equal(seen_weights[4], seen_weights[3])


def test_fit_reduces_lr_on_every_plateau_epoch(monkeypatch):
    """FuxiCTR's reduce-lr-on-plateau, worked by hand (patience 2, lr0 1e-3, factor 0.1, floor 1e-6).
    epoch: val AUC  -> event                       -> lr for the next epoch
      1: 0.60       best                              1e-3
      2: 0.70       best                              1e-3
      3: 0.69       bad 1 -> decay                    1e-4
      4: 0.71       best (counter resets, lr kept)    1e-4
      5: 0.705      bad 1 -> decay                    1e-5
      6: 0.72       best                              1e-5
      7: 0.72+5e-7  bad 1 (< best + 1e-6) -> decay    1e-6
      8: 0.73       best                              1e-6
      9: 0.70       bad 1 -> decay, floored           max(1e-7, 1e-6) = 1e-6
     10: 0.70       bad 2 -> decay, stop (never reaches 0.99)"""
    data = make_synthetic(replace(SyntheticConfig(), n_train=300, n_valid=200, n_test=300))
    scripted = iter([0.6, 0.7, 0.69, 0.71, 0.705, 0.72, 0.72 + 5e-7, 0.73, 0.70, 0.70, 0.99])
    real_auc = train.roc_auc_score
    monkeypatch.setattr(
        train, "roc_auc_score", lambda y, p: next(scripted) if len(y) == len(data.y_valid) else real_auc(y, p)
    )
    cfg = {"emb_dim": 4, "lr": 1e-3, "batch_size": 128, "max_epochs": 100, "patience": 2}
    out = train.fit("lr", data, cfg, seed=0)
    expected = [1e-3, 1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5, 1e-6, 1e-6, 1e-6]
    assert out["epochs"] == 10 and out["best_epoch"] == 8 and out["stopped_early"]
    assert out["lr_curve"] == pytest.approx(expected, rel=1e-12)
    assert out["lr_decays"] == 4  # after epochs 3, 5, 7, 9 (the decay after the stopping epoch 10 is moot)
    # switched off, the lr never moves and the same scripted run stops at the first 2-epoch plateau
    scripted = iter([0.6, 0.7, 0.69, 0.68])
    out = train.fit("lr", data, {**cfg, "reduce_lr_on_plateau": False}, seed=0)
    assert out["lr_curve"] == [1e-3] * 4 and out["epochs"] == 4


def test_lr_decay_floor_and_all_groups():
    w1, w2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([{"params": [w1], "lr": 1e-3}, {"params": [w2], "lr": 3e-6}])
    assert train.lr_decay(opt) == pytest.approx(1e-4)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-4, 1e-6])  # 3e-7 floored to 1e-6


def test_train_step_clips_global_grad_norm():
    """loss = <g, w> has gradient g. With SGD lr 1 the step is -clip(g): g = (30, 40, 0, 0) has norm 50,
    so clipping at 10 scales it by 10/50 to (6, 8, 0, 0); g = (3, 4, 0, 0) (norm 5) is left as is."""
    for g, step in (([30.0, 40.0, 0, 0], [6.0, 8.0, 0, 0]), ([3.0, 4.0, 0, 0], [3.0, 4.0, 0, 0])):
        model = torch.nn.Linear(4, 1, bias=False)
        torch.nn.init.zeros_(model.weight)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        gt = torch.tensor([g])
        train.train_step(model, opt, lambda m=model, gt=gt: (m.weight * gt).sum(), train.MAX_GRADIENT_NORM)
        torch.testing.assert_close(model.weight.detach(), -torch.tensor([step]), atol=1e-5, rtol=0)
    # None disables clipping: the full gradient is applied
    model = torch.nn.Linear(4, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    train.train_step(model, opt, lambda: (model.weight * torch.tensor([[30.0, 40.0, 0, 0]])).sum(), None)
    torch.testing.assert_close(model.weight.detach(), -torch.tensor([[30.0, 40.0, 0, 0]]))


def test_fit_clips_at_ten_by_default(monkeypatch):
    calls = []
    real = train.clip_grad_norm_
    monkeypatch.setattr(
        train, "clip_grad_norm_", lambda params, norm: calls.append(norm) or real(params, norm)
    )
    data = make_synthetic(replace(SyntheticConfig(), n_train=300, n_valid=200, n_test=300))
    cfg = {"emb_dim": 4, "lr": 1e-3, "batch_size": 128, "max_epochs": 1, "patience": 2}
    train.fit("lr", data, cfg, seed=0)
    assert calls == [10.0] * 3  # 300 rows / batch 128 = 3 steps, each clipped at FuxiCTR's default 10


def test_fit_hands_each_epochs_validation_predictions_to_on_epoch():
    data = make_synthetic(replace(SyntheticConfig(), n_train=300, n_valid=200, n_test=300))
    seen = []
    cfg = {"emb_dim": 4, "lr": 1e-2, "batch_size": 128, "max_epochs": 3, "patience": 5}
    out = train.fit("lr", data, cfg, seed=0, on_epoch=lambda e, p: seen.append((e, p.copy())))
    assert [e for e, _ in seen] == [1, 2, 3]
    from sklearn.metrics import roc_auc_score

    assert [roc_auc_score(data.y_valid, p) for _, p in seen] == out["val_curve"]
