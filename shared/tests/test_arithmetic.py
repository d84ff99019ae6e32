"""Arithmetic problems: deterministic from a seed, train and held out disjoint, answers equal
Python's own evaluation, the checker parses the first integer."""

from __future__ import annotations

from collections import Counter

import pytest

from xentlab.data.arithmetic import ArithmeticConfig, is_correct, make_arithmetic, parse_answer

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
