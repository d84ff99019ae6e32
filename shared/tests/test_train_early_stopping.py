import math

import pytest

from xentlab.train.early_stopping import EarlyStopping


def run(stopper: EarlyStopping, values) -> tuple[int | None, list[bool]]:
    """Feed values until the stopper fires; returns (index it fired at, improved flags)."""
    flags = []
    for i, v in enumerate(values):
        stop = stopper.update(v)
        flags.append(stopper.improved)
        if stop:
            return i, flags
    return None, flags


def test_min_mode_patience_counts_evaluations_in_a_row():
    # 1.0 improves (ref 1.0); 1.1, 1.05 do not (bad 1, 2); 0.9 improves (bad reset to 0); 0.95, 0.92, 0.93
    # do not (bad 1, 2, 3) -> fires at index 6, and never sees the final 0.1
    at, flags = run(EarlyStopping(patience=3), [1.0, 1.1, 1.05, 0.9, 0.95, 0.92, 0.93, 0.1])
    assert at == 6
    assert flags == [True, False, False, True, False, False, False]


def test_min_delta_keeps_the_reference_on_small_gains():
    # Keras semantics: with min_delta 0.01 the reference stays at 1.0 while the loss creeps down by
    # 0.003 per evaluation (0.997, 0.994, 0.991: never below 1.0 - 0.01), so patience 3 runs out at the
    # third small gain although every value was a new minimum
    s = EarlyStopping(patience=3, min_delta=0.01)
    at, flags = run(s, [1.0, 0.997, 0.994, 0.991, 0.5])
    assert at == 3 and flags == [True, False, False, False]
    assert s.best == 1.0


def test_improvement_must_exceed_min_delta_strictly():
    s = EarlyStopping(patience=1, min_delta=0.25)
    assert not s.update(1.0) and s.improved
    assert s.update(0.75)  # exactly best - min_delta is not an improvement
    s = EarlyStopping(patience=1, min_delta=0.25)
    s.update(1.0)
    assert not s.update(0.7) and s.best == 0.7


def test_max_mode_for_scores_like_auc():
    # FuxiCTR: a strictly higher AUC is an improvement; equal AUC counts against patience
    at, flags = run(EarlyStopping(patience=2, mode="max"), [0.70, 0.72, 0.72, 0.71, 0.9])
    assert at == 3 and flags == [True, True, False, False]


def test_nan_never_improves():
    s = EarlyStopping(patience=2)
    s.update(1.0)
    assert not s.update(math.nan) and not s.improved
    assert s.update(math.nan)
    assert s.best == 1.0
    # a run whose first value is NaN never gets a reference
    s = EarlyStopping(patience=1, mode="max")
    assert s.update(math.nan) and s.best == -math.inf


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"patience": 0}, "patience"),
        ({"patience": 2.0}, "patience"),
        ({"patience": True}, "patience"),
        ({"patience": 2, "min_delta": -0.1}, "min_delta"),
        ({"patience": 2, "min_delta": math.inf}, "min_delta"),
        ({"patience": 2, "mode": "lower"}, "mode"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EarlyStopping(**kwargs)


def test_ties_improve_is_fuxictr_rule():
    # FuxiCTR: an AUC exactly best + min_delta is an improvement; Keras needs strictly more
    keras = EarlyStopping(patience=1, min_delta=0.25, mode="max")
    fuxi = EarlyStopping(patience=1, min_delta=0.25, mode="max", ties_improve=True)
    for s in (keras, fuxi):
        s.update(0.5)
    assert keras.update(0.75) and not keras.improved
    assert not fuxi.update(0.75) and fuxi.improved and fuxi.best == 0.75
    # in min mode as well, and NaN still never improves
    fuxi_min = EarlyStopping(patience=1, min_delta=0.25, ties_improve=True)
    fuxi_min.update(1.0)
    assert not fuxi_min.update(0.75) and fuxi_min.best == 0.75
    assert fuxi_min.update(math.nan)
