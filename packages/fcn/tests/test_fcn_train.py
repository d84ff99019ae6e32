"""Early stopping (FuxiCTR's rule) and the training loop's stop / restore-best behaviour."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from fcn import train
from fcn.data import SyntheticConfig, make_synthetic
from fcn.train import EarlyStopping


def test_early_stopping_rule_by_hand():
    # patience 2: 0.6 (best, ep1), 0.7 (best, ep2), 0.65 (bad 1), 0.7 + 5e-7 (< best + 1e-6: bad 2 -> stop)
    es = EarlyStopping(patience=2)
    assert es.step(0.6) and es.step(0.7)
    assert not es.step(0.65) and not es.stopped
    assert not es.step(0.7 + 5e-7) and es.stopped
    assert (es.best, es.best_epoch, es.epoch) == (0.7, 2, 4)


def test_early_stopping_counter_resets_on_improvement():
    es = EarlyStopping(patience=2)
    for v in (0.5, 0.4, 0.6, 0.55):  # bad, then a new best resets the count, then bad once
        es.step(v)
    assert not es.stopped and es.bad == 1 and es.best_epoch == 3
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)


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
