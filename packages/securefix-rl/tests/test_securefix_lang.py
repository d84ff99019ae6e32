"""The data generator and the security checker."""

import random

import pytest
from securefix_rl.checker import exact_match, has_exact_guard, has_guard, norm, preserves_function
from securefix_rl.lang import PATTERNS, make_dataset, make_pair, make_split


@pytest.mark.parametrize("pattern", PATTERNS)
def test_fix_inserts_one_or_two_guard_lines_before_the_danger(pattern):
    rng = random.Random(3)
    for _ in range(20):
        p = make_pair(rng, pattern)
        v, f = p.vuln_lines, p.fixed_lines
        assert 1 <= len(p.guard) <= 2 and len(f) == len(v) + len(p.guard)
        assert f[: p.insert_at] + f[p.insert_at + len(p.guard) :] == v  # nothing else changes
        assert f[p.insert_at + len(p.guard)] == p.danger
        assert p.var in p.guard[0]
        compile(p.vuln, "<vuln>", "exec")  # valid Python, so tree-sitter parses it
        compile(p.fixed, "<fixed>", "exec")
        assert has_guard(p.fixed, p) and not has_guard(p.vuln, p)
        assert preserves_function(p.fixed, p) and preserves_function(p.vuln, p)
        assert exact_match(p.fixed, p) and not exact_match(p.vuln, p)


def test_checker_needs_the_guard_before_the_danger_and_the_danger_present():
    p = make_pair(random.Random(0), "null")
    lines = p.fixed_lines
    g = p.insert_at
    moved = lines[:g] + lines[g + 2 : g + 3] + lines[g : g + 2] + lines[g + 3 :]  # guard after danger
    assert not has_guard("\n".join(moved), p)
    no_danger = [x for x in lines if norm(x) != norm(p.danger)]
    assert not has_guard("\n".join(no_danger), p)
    half = [x for i, x in enumerate(lines) if i != g + 1]  # "if v is None:" without "return None"
    assert not has_guard("\n".join(half), p)
    spaced = "\n".join("  ".join(x.split(" ")) for x in lines)  # formatting never decides
    assert has_guard(spaced, p)
    wrong = [x.replace(f" {p.var} is None", " zzz is None") for x in lines]  # guards another variable
    assert not has_guard("\n".join(wrong), p)


def test_semantic_checker_reads_the_repair_on_its_own_terms():
    # the guard tests the variable the generated dangerous line uses, even if a name was miscopied
    p = make_pair(random.Random(2), "eval")
    renamed = p.fixed.replace(f"( {p.var} )", "( qqq )")
    assert has_guard(renamed, p) and not has_exact_guard(renamed, p)
    assert has_exact_guard(p.fixed, p) and not has_exact_guard(p.vuln, p)


def test_dataset_is_deterministic_balanced_and_disjoint():
    a = make_dataset(200, 20, 40, seed=5)
    b = make_dataset(200, 20, 40, seed=5)
    assert [p.fixed for p in a["train"]] == [p.fixed for p in b["train"]]
    held = {p.vuln for p in a["test"]} | {p.vuln for p in a["dev"]}
    assert not held & {p.vuln for p in a["train"]}
    assert [p.pattern for p in make_split(8, 0)] == list(PATTERNS) * 2
    with pytest.raises(ValueError):
        make_pair(random.Random(0), "xss")
