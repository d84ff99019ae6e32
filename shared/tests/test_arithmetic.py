"""Arithmetic problems: deterministic from a seed, train and held out disjoint, answers equal
Python's own evaluation, the checker parses the first integer; the validation split is disjoint
from both and leaves them unchanged."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from xentlab.data.arithmetic import (
    ArithmeticConfig,
    is_correct,
    make_arithmetic,
    make_validation,
    parse_answer,
)

CFG = ArithmeticConfig(n_train=600, n_heldout=200)


def test_deterministic_from_seed():
    a, b = make_arithmetic(CFG, 3), make_arithmetic(CFG, 3)
    assert a.train == b.train and a.heldout == b.heldout
    c = make_arithmetic(CFG, 4)
    assert [p.expr for p in c.train] != [p.expr for p in a.train]


def test_splits_are_disjoint_and_sized():
    task = make_arithmetic(CFG, 0)
    assert len(task.train) == 600 and len(task.heldout) == 200
    train, held = [p.expr for p in task.train], [p.expr for p in task.heldout]
    assert len(set(train)) == len(train) and len(set(held)) == len(held)  # no duplicates within
    assert not set(train) & set(held)  # none in both


def test_answers_equal_python_eval_and_levels_mixed():
    task = make_arithmetic(ArithmeticConfig(n_train=2000, n_heldout=500, max_operand=19), 1)
    for p in task.train + task.heldout:
        assert p.answer == eval(p.expr)  # the expressions only hold digits and + - *
        assert p.question == p.expr + "=" and p.target == str(p.answer)
    levels = Counter(p.level for p in task.train + task.heldout)
    assert set(levels) == {1, 2, 3, 4} and min(levels.values()) > 100
    assert any(p.answer < 0 for p in task.train)  # subtraction gives negative answers
    ops = {p.level: p.expr for p in task.train}
    assert "+" in ops[1] and "-" in ops[2] and "*" in ops[3] and "+" in ops[4] and "*" in ops[4]


def test_operand_ranges():
    task = make_arithmetic(ArithmeticConfig(n_train=300, n_heldout=0, max_operand=19, max_factor=9), 2)
    for p in task.train:
        nums = [int(x) for x in p.expr.replace("+", " ").replace("-", " ").replace("*", " ").split()]
        assert all(0 <= x <= 19 for x in nums)


@pytest.mark.parametrize(
    "text,value",
    [
        ("42", 42),
        (" 42", 42),
        ("-7", -7),
        ("  -7</s>", -7),
        ("12 apples", 12),
        ("12abc3", 12),
        ("0", 0),
        ("", None),
        ("abc", None),
        ("x 12", None),
        ("- 3", None),
        ("-", None),
        ("+5", None),
    ],
)
def test_parse_answer(text, value):
    assert parse_answer(text) == value


def test_is_correct_edge_cases():
    assert is_correct("-12", -12) and not is_correct("12", -12)
    assert is_correct("7 because", 7) and is_correct(" 007", 7)
    assert not is_correct("", 0) and not is_correct("none", 0) and not is_correct("the answer is 7", 7)


def test_bad_config_and_too_many_problems():
    with pytest.raises(ValueError, match="level_weights"):
        ArithmeticConfig(level_weights=(1.0, 1.0))
    with pytest.raises(ValueError, match="distinct"):
        make_arithmetic(ArithmeticConfig(n_train=5000, n_heldout=0, max_operand=9), 0)


# the pacs package's task (seed 1234) and CFG above
PACS_CFG = ArithmeticConfig(n_train=1500, n_heldout=300, max_operand=19, max_factor=9)


def _digest(task) -> str:
    rows = (
        [(p.expr, p.answer, p.level) for p in task.train],
        [(p.expr, p.answer, p.level) for p in task.heldout],
    )
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def test_train_and_heldout_splits_are_bit_identical_to_before_the_validation_split():
    # digests of make_arithmetic's output at the commit before make_validation existed (e9c39e2):
    # adding the validation split must not move a single problem of the existing splits
    assert _digest(make_arithmetic(PACS_CFG, 1234)) == "787d04455fea6b15"
    assert _digest(make_arithmetic(CFG, 0)) == "ebf0e3188bb03349"
    make_validation(PACS_CFG, 1234, 100)  # no shared state: the splits are the same afterwards
    assert _digest(make_arithmetic(PACS_CFG, 1234)) == "787d04455fea6b15"


@pytest.mark.parametrize("cfg,seed,n_val", [(PACS_CFG, 1234, 100), (CFG, 0, 300), (CFG, 5, 37)])
def test_validation_is_disjoint_deterministic_and_follows_the_pool_level_mix(cfg, seed, n_val):
    task = make_arithmetic(cfg, seed)
    val = make_validation(cfg, seed, n_val)
    assert val == make_validation(cfg, seed, n_val)  # deterministic
    exprs = [p.expr for p in val]
    assert len(val) == n_val and len(set(exprs)) == n_val
    assert not set(exprs) & {p.expr for p in task.train}
    assert not set(exprs) & {p.expr for p in task.heldout}
    for p in val:
        assert p.answer == eval(p.expr) and p.level == _level_of(p.expr)
    pool = Counter(p.level for p in task.train + task.heldout)
    got = Counter(p.level for p in val)
    total = sum(pool.values())
    for lv in (1, 2, 3, 4):  # largest-remainder quotas: within one problem of the exact share
        assert abs(got[lv] - n_val * pool[lv] / total) < 1.0


def _level_of(expr: str) -> int:
    if "*" in expr:
        return 4 if "+" in expr else 3
    return 1 if "+" in expr else 2


def test_validation_level_mix_is_the_pools_not_the_weights():
    # operands <= 19: the 400 "a+b" expressions are almost used up by the pool, so a validation
    # split drawn with the (uniform) weights would be mostly level 4; the pool has ~20% level 1
    val = make_validation(PACS_CFG, 1234, 100)
    assert Counter(p.level for p in val) == {1: 20, 2: 20, 3: 15, 4: 45}


def test_validation_errors():
    with pytest.raises(ValueError, match="level 3"):  # only 18 unused level-3 expressions are left
        make_validation(PACS_CFG, 1234, 130)
    with pytest.raises(ValueError, match="n_val"):
        make_validation(CFG, 0, -1)
    assert make_validation(CFG, 0, 0) == []
    # an empty pool: the level weights decide the mix
    val = make_validation(ArithmeticConfig(n_train=0, n_heldout=0, level_weights=(1, 0, 0, 1)), 0, 10)
    assert Counter(p.level for p in val) == {1: 5, 4: 5}
