"""The learning-rate schedule of the CE / CE + OPL arms against the official classification/cifar/train.py.

Official (train.py, utils.WarmUpLR, conf/global_settings.py): ``WarmUpLR(optimizer, iter_per_epoch * warm)``
is created last, so its constructor's first step sets lr = base * 0 / total = 0; it is stepped *after* every
batch of the warm-up epoch(s), so batch b (0-based) of the warm-up runs at base * b / total. From 1-based
epoch e > warm on, ``train_scheduler.step(e)`` sets the closed form base * 0.2 ** bisect_right(MILESTONES, e)
before the epoch, so 1-based epoch 60 (0-based 59) already runs at 0.02.
"""

from bisect import bisect_right
from pathlib import Path

import pytest
from opl.experiment import RunConfig, lr_at

from xentlab.testing import load_reproduce


def _official_lr(base: float, step: int, spe: int, warm: int, milestones) -> float:
    epoch_1based = step // spe + 1
    if epoch_1based <= warm:
        return base * step / (spe * warm)  # WarmUpLR.last_epoch == number of batches already done
    return base * 0.2 ** bisect_right(list(milestones), epoch_1based)


def test_warmup_starts_at_zero_as_official_warmuplr():
    cfg = RunConfig(lr=0.1, warmup_epochs=1, milestones=(15, 24), lr_decay=0.2)
    spe = 16
    assert lr_at(cfg, 0, spe) == 0.0  # the first batch runs at lr 0 (momentum buffer still gets its grad)
    for b in range(spe):
        assert lr_at(cfg, b, spe) == pytest.approx(0.1 * b / spe, abs=1e-15)
    assert lr_at(cfg, spe, spe) == pytest.approx(0.1)


def test_full_scale_milestones_match_the_official_closed_form():
    full = load_reproduce(Path(__file__).parents[1] / "reproduce.py").FULL
    cfg = RunConfig(**{k: v for k, v in full.items() if k in RunConfig.__dataclass_fields__})
    spe = 352  # 45,000 training images / batch 128, rounded up (the value does not matter)
    for epoch0 in range(cfg.epochs):
        step = epoch0 * spe + 5
        assert lr_at(cfg, step, spe) == pytest.approx(
            _official_lr(0.1, step, spe, 1, (60, 120, 160)), rel=1e-12
        )
