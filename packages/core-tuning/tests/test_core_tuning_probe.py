"""Linear probe, pre-training snapshots (the pilot's candidates) and the pilot's test-free fine-tuning mode."""

import numpy as np
import pytest
import torch
from core_tuning.experiment import RunConfig, run
from core_tuning.pretrain import PretrainConfig, load_pool, train_simclr
from core_tuning.probe import linear_probe_accuracy

TINY_PRE = dict(n_per_class=6, widths=(4, 4, 4), proj_dim=4, epochs=2, batch_size=16)


def test_probe_separates_separable_features_and_is_deterministic():
    # two Gaussian blobs 10 std apart in 3-d: a logistic regression separates them (accuracy 1)
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    f = rng.normal(size=(40, 3)) + 10.0 * y[:, None]
    f[:, 2] = 5.0  # a constant feature must not divide by a zero std
    assert linear_probe_accuracy(f, y, f, y) == 1.0
    assert linear_probe_accuracy(f, y, f[::-1], y[::-1]) == linear_probe_accuracy(f, y, f[::-1], y[::-1])
    with pytest.raises(ValueError, match="length"):
        linear_probe_accuracy(f, y[:-1], f, y)


def test_snapshot_after_epoch_e_equals_an_e_epoch_run():
    # the pilot reads each candidate pre-training length off one longer run; this only holds because the lr is
    # constant and an epoch's data order / augmentation do not depend on cfg.epochs
    cfg2 = PretrainConfig(**TINY_PRE)
    cfg3 = PretrainConfig(**{**TINY_PRE, "epochs": 3})
    x = load_pool(cfg2).x.float()
    state2, curve2 = train_simclr(cfg2, x, "cpu", lambda **k: None)
    snaps = {}
    train_simclr(cfg3, x, "cpu", lambda **k: None, on_epoch=lambda e, s, c: snaps.setdefault(e, (s, list(c))))
    assert sorted(snaps) == [1, 2, 3]
    assert snaps[2][1] == curve2
    assert all(torch.equal(snaps[2][0][k], state2[k]) for k in state2)
    assert not all(torch.equal(snaps[3][0][k], state2[k]) for k in state2)


def test_snapshot_is_unchanged_by_a_callback_that_draws_random_numbers():
    # the pilot's callback builds and probes a fresh backbone (global torch RNG draws) after every candidate
    # epoch; the training stream (augmentations) must not see those draws, or the cached snapshot is not the
    # e-epoch run that reproduce.py's key names (it was not, found by `xentlab verify`)
    cfg2 = PretrainConfig(**TINY_PRE)
    cfg3 = PretrainConfig(**{**TINY_PRE, "epochs": 3})
    x = load_pool(cfg2).x.float()
    state2, curve2 = train_simclr(cfg2, x, "cpu", lambda **k: None)
    snaps = {}

    def drawing_callback(e, s, c):
        torch.randn(1000)
        snaps.setdefault(e, (s, list(c)))

    train_simclr(cfg3, x, "cpu", lambda **k: None, on_epoch=drawing_callback)
    assert snaps[2][1] == curve2
    assert all(torch.equal(snaps[2][0][k], state2[k]) for k in state2)


def test_pilot_mode_never_scores_the_test_set(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path))
    cfg = RunConfig(arm="ce", pretrain=dict(TINY_PRE, epochs=1), n_labelled_per_class=4, n_val_per_class=2,
                    n_test_per_class=3, epochs=1, batch_size=16, contrast_dim=4)  # fmt: skip
    out = run(cfg, 0, device="cpu", log=lambda **k: None, score_test=False)
    assert not any("test" in k for k in out)
    assert 0 <= out["final_train_acc"] <= 1 and 0 <= out["pretrain_probe_val_acc"] <= 1
