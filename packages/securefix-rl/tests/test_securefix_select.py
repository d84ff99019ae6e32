"""The per-seed SFT stopping rule (securefix_rl.task.choose_stop), by hand-made checkpoint lists."""

import pytest
from securefix_rl.task import choose_stop

LO, HI = 0.3, 0.7


def test_stops_at_first_checkpoint_in_band():
    assert choose_stop([(400, 0.0), (450, 0.1)], LO, HI) is None
    assert choose_stop([(400, 0.0), (450, 0.1), (500, 0.3)], LO, HI) == 500  # band is closed
    assert choose_stop([(400, 0.7)], LO, HI) == 400


def test_jump_over_band_keeps_checkpoint_closer_to_midpoint():
    # 0.25 is 0.25 from 0.5, 0.9 is 0.4 away: the previous checkpoint is kept
    assert choose_stop([(400, 0.0), (450, 0.25), (500, 0.9)], LO, HI) == 450
    # 0.0 is 0.5 away, 0.75 is 0.25 away: the latest is kept
    assert choose_stop([(400, 0.0), (450, 0.75)], LO, HI) == 450
    # already above the band at the first checkpoint: nothing earlier to restore
    assert choose_stop([(400, 0.95)], LO, HI) == 400


def test_cap_keeps_last_model_below_band():
    assert choose_stop([(400, 0.0), (450, 0.1)], LO, HI, at_cap=True) == 450


def test_empty_is_an_error():
    with pytest.raises(ValueError):
        choose_stop([], LO, HI)
