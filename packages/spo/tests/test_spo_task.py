"""spo.task and spo.data: the judge, the preference pairs and the degree data."""

from __future__ import annotations

import random

import pytest
from spo.data import make_degree_examples, make_pairs, remove_key_units, rewrite_non_key_units
from spo.task import KEY_ATTRIBUTES, build_task, read_facts, response_text, reward


@pytest.fixture(scope="module")
def task():
    return build_task(12, 4, seed=3)


def test_reference_response_scores_four(task):
    for e in task.train + task.test:
        assert reward(response_text(e), e) == 4
        for a in KEY_ATTRIBUTES:  # the prompt holds every key fact
            assert e.values[a] in e.prompt_question


def test_judge_hand_cases(task):
    e = task.train[0]
    other = next(x for x in task.train if x.values["genre"] != e.values["genre"])
    # one fact dropped: 3 correct, 0 wrong
    assert reward(response_text(e, KEY_ATTRIBUTES[:3]), e) == 3
    # one wrong value: 3 correct - 1 wrong = 2
    assert reward(response_text(e, wrong={"genre": other.values["genre"]}), e) == 2
    # garbage and the empty string state nothing: 0
    assert reward("the the the", e) == 0 and reward("", e) == 0
    # only the first sentence of an attribute counts; a duplicate with a wrong value is ignored
    text = f"Born in {e.values['birthplace']}. Born in Nowhere."
    assert read_facts(text) == {"birthplace": e.values["birthplace"]} and reward(text, e) == 1
    # the second phrasing (control degree data) is judged the same
    assert reward(rewrite_non_key_units(e, 3, random.Random(0)), e) == 4


def test_pairs_prefer_chosen(task):
    samples = [[response_text(e), "Born in Nowhere."] for e in task.train]  # one perfect, one bad sample
    pairs = make_pairs(task.train, 2, 0.25, seed=0, samples=samples)
    assert len(pairs) == 2 * len(task.train)
    for p in pairs:
        assert reward(p.chosen, p.entity) > reward(p.rejected, p.entity)
    # the perfect sample can never be rejected (a synthetic corruption replaces it); the bad one is used
    assert sum(p.sampled for p in pairs) == len(task.train)
    assert make_pairs(task.train, 2, 0.25, seed=0, samples=samples) == pairs  # deterministic
    with pytest.raises(ValueError, match="samples"):
        make_pairs(task.train, 3, 0.25, seed=0, samples=samples)


def test_degree_labels_count_removed_facts(task):
    rng = random.Random(1)
    e = task.train[1]
    for m in range(4):
        text = remove_key_units(e, m, rng)
        assert len(read_facts(text)) == 4 - m and reward(text, e) == 4 - m  # degree tracks preference
        ctrl = rewrite_non_key_units(e, m, rng)
        assert reward(ctrl, e) == 4  # control: degree does not track preference
        assert sum(s.startswith(("Place", "Genre", "Award", "Debut")) for s in ctrl.split(". ")) == m
    ex = make_degree_examples(task.train, 4, "key", seed=0)
    assert [d.label for d in ex[:4]] == [0, 1, 2, 3] and len(ex) == 4 * len(task.train)
    with pytest.raises(ValueError, match="mode"):
        make_degree_examples(task.train, 4, "other", seed=0)
    with pytest.raises(ValueError, match="n_classes"):
        make_degree_examples(task.train, 5, "key", seed=0)
