"""The optional step learning-rate schedule (the author's FSL-Loss train.py: Adam + StepLR)."""

from pathlib import Path

import pytest
from susana.experiment import RunConfig, scheduled_lr

from xentlab.testing import load_reproduce

REPRO = Path(__file__).parents[1] / "reproduce.py"


def test_step_schedule_hand_values():
    # official: StepLR(step_size=20 epochs, gamma=0.5), stepped once per epoch of train_epi = 100 episodes,
    # i.e. the lr halves after every 2000 training episodes: 1e-3 for episodes 1..2000, 5e-4 for 2001..4000
    cfg = RunConfig(lr=1e-3, lr_step=2000, lr_gamma=0.5)
    assert scheduled_lr(cfg, 0) == pytest.approx(1e-3)
    assert scheduled_lr(cfg, 1999) == pytest.approx(1e-3)
    assert scheduled_lr(cfg, 2000) == pytest.approx(5e-4)
    assert scheduled_lr(cfg, 4000) == pytest.approx(2.5e-4)


def test_no_schedule_is_the_default_and_cpu_and_full_use_the_official_one():
    assert RunConfig().lr_step is None
    assert scheduled_lr(RunConfig(lr=1e-3), 10_000) == pytest.approx(1e-3)
    mod = load_reproduce(REPRO)
    for exp in mod.EXPERIMENTS:
        # the author's StepLR: halve every 20 epochs x 100 episodes (cpu since the fourth protocol fix)
        for scale in ("cpu", "full"):
            assert exp.configs[scale]["lr_step"] == 2000 and exp.configs[scale]["lr_gamma"] == 0.5


def test_bad_schedule_errors():
    with pytest.raises(ValueError, match="lr_step"):
        RunConfig(lr_step=0)
    with pytest.raises(ValueError, match="lr_gamma"):
        RunConfig(lr_step=10, lr_gamma=0.0)
