"""The optional operand ranges of xentlab.data.arithmetic (min_operand, max_addend): the defaults keep
every existing problem set bit-identical, and the dco family ("a+f*b", 1-digit a and f, 2-digit b)
respects its ranges in every split."""

from __future__ import annotations

import hashlib

import pytest

from xentlab.data.arithmetic import ArithmeticConfig, capacity, make_arithmetic, make_validation

DCO_FAMILY = dict(max_operand=99, min_operand=10, max_addend=9, max_factor=9, level_weights=(0, 0, 0, 1))


def _digest(*objs) -> str:
    return hashlib.sha256(repr(objs).encode()).hexdigest()[:16]


def test_defaults_reproduce_the_problem_sets_from_before_the_ranges():
    # digests computed with the generator as committed before min_operand / max_addend existed
    c = ArithmeticConfig(n_train=1500, n_heldout=300, max_operand=19, max_factor=9)  # the pacs cpu task
    t = make_arithmetic(c, 1234)
    assert _digest(t.train, t.heldout, make_validation(c, 1234, 100)) == "d2dd22dd22c42f79"
    t = make_arithmetic(ArithmeticConfig(), 0)
    assert _digest(t.train, t.heldout) == "0c4a508f7c8adade"


def test_dco_family_ranges_and_capacity():
    cfg = ArithmeticConfig(n_train=2000, n_heldout=500, **DCO_FAMILY)
    assert capacity(cfg) == 10 * 10 * 90
    task = make_arithmetic(cfg, 7)
    val = make_validation(cfg, 7, 300)
    exprs = [p.expr for p in task.train + task.heldout + val]
    assert len(set(exprs)) == len(exprs) == 2800
    for p in task.train + task.heldout + val:
        a, rest = p.expr.split("+")
        f, b = rest.split("*")
        assert p.level == 4 and 0 <= int(a) <= 9 and 0 <= int(f) <= 9 and 10 <= int(b) <= 99
        assert p.answer == int(a) + int(f) * int(b)


def test_min_operand_applies_to_other_levels():
    cfg = ArithmeticConfig(n_train=100, n_heldout=20, max_operand=30, min_operand=5)
    for p in make_arithmetic(cfg, 0).train:
        if p.level in (1, 2):
            a, b = p.expr.replace("-", "+").split("+")
            assert 5 <= int(a) <= 30 and 5 <= int(b) <= 30


def test_bad_ranges_raise():
    with pytest.raises(ValueError, match="min_operand"):
        ArithmeticConfig(max_operand=9, min_operand=10)
    with pytest.raises(ValueError, match="min_operand"):
        ArithmeticConfig(min_operand=-1)
    with pytest.raises(ValueError, match="max_addend"):
        ArithmeticConfig(max_addend=-1)
