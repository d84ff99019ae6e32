"""xentlab.train.schedules: the warm-up + cosine schedule against hand-computed values."""

import math

import pytest

from xentlab.train.schedules import warmup_cosine_lr


def test_warmup_then_cosine_by_hand():
    kw = dict(lr=1e-2, warmup=0.1, final_lr_frac=0.1)
    # 100 steps, warm = 10: step s < 10 gives lr (s + 1) / 10
    assert warmup_cosine_lr(0, 100, **kw) == pytest.approx(1e-3, rel=1e-15)
    assert warmup_cosine_lr(9, 100, **kw) == pytest.approx(1e-2, rel=1e-15)
    # p = (s - 10) / 90: p = 0 is the peak, p = 1/2 is halfway between peak and floor, p = 1 the floor
    assert warmup_cosine_lr(10, 100, **kw) == pytest.approx(1e-2, rel=1e-15)
    assert warmup_cosine_lr(55, 100, **kw) == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5), rel=1e-12)
    assert warmup_cosine_lr(100, 100, **kw) == pytest.approx(1e-3, rel=1e-12)
    p = 20 / 90
    assert warmup_cosine_lr(30, 100, **kw) == pytest.approx(1e-2 * (0.1 + 0.45 * (1 + math.cos(math.pi * p))))


def test_no_warmup_still_takes_one_step():
    assert warmup_cosine_lr(0, 10, lr=1.0, warmup=0.0, final_lr_frac=0.0) == 1.0
    assert warmup_cosine_lr(10, 10, lr=1.0, warmup=0.0, final_lr_frac=0.0) == pytest.approx(0.0, abs=1e-15)
