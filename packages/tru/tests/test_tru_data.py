"""The task's splits: nothing held out leaks into any training set, targets never state a value."""

from __future__ import annotations

from tru.data import PARAPHRASE_TEMPLATES, UNLEARN_TEMPLATES, VAL_TEMPLATE, build_task
from tru.targets import REASONING_PREFIX, RESPONSE_PREFIX, target_segments, target_text


def _task():
    return build_task(0, n_authors=20, forget_frac=0.1, n_cipher=2, n_private=2)


def test_heldout_attacks_never_appear_in_training():
    task = _task()
    forget = set(task.bank.forget_authors)
    trained = {(qa.question, qa.lang) for qa in task.finetune + task.forget_unlearn + task.retain_unlearn}
    for qa in task.panels_test["paraphrase"] + task.panels_test["cipher"]:
        assert qa.fact.author in forget
        assert (qa.question, qa.lang) not in trained
    assert {qa.template for qa in task.panels_test["paraphrase"]} == set(PARAPHRASE_TEMPLATES)


def test_validation_is_outside_every_unlearning_set_and_every_test_panel():
    task = _task()
    unlearn = {qa.question for qa in task.forget_unlearn + task.retain_unlearn}
    val = {qa.question for p in task.panels_val.values() for qa in p}
    test = {qa.question for p in task.panels_test.values() for qa in p}
    assert val.isdisjoint(unlearn) and val.isdisjoint(test)
    assert {qa.template for qa in task.panels_val["forget"]} == {VAL_TEMPLATE}
    assert {qa.template for qa in task.forget_unlearn} == set(UNLEARN_TEMPLATES)
    r_val = {qa.fact.author for qa in task.panels_val["retain"]}
    r_other = {qa.fact.author for qa in task.panels_test["retain_other"]}
    r_train = {qa.fact.author for qa in task.retain_unlearn}
    assert r_val.isdisjoint(r_other) and r_train.isdisjoint(r_val | r_other)
    # the primary retain panel asks D_r's authors with a template that is not in D_r (TOFU-style)
    assert {qa.fact.author for qa in task.panels_test["retain"]} == r_train
    assert {qa.template for qa in task.panels_test["retain"]}.isdisjoint(
        {qa.template for qa in task.retain_unlearn}
    )


def test_private_authors_are_refused_in_both_formats_and_are_nobody_else():
    task = _task()
    private = set(task.private_authors)
    assert private.isdisjoint(task.bank.forget_authors) and private.isdisjoint(task.bank.retain_authors)
    answers = [qa.answer for qa in task.finetune if qa.fact.author in private]
    assert answers and all(RESPONSE_PREFIX.strip() in a for a in answers)
    assert any(a.startswith(REASONING_PREFIX.strip()) for a in answers)
    assert any(a.startswith(RESPONSE_PREFIX.strip()) for a in answers)


def test_targets_name_the_scope_but_never_the_value():
    task = _task()
    for fact in task.bank.forget_facts:
        segs = target_segments(fact, reasoning=True)
        assert segs[0].startswith(REASONING_PREFIX) and segs[1].startswith(RESPONSE_PREFIX)
        assert segs[1].endswith("</s>") and fact.author in segs[0]
        for reasoning in (True, False):
            text = target_text(fact, reasoning=reasoning)
            assert fact.value.lower() not in text.lower()
        assert target_segments(fact, reasoning=False) == segs[1:]


def test_same_seed_same_task():
    a, b = _task(), _task()
    assert [q.question for q in a.finetune] == [q.question for q in b.finetune]
    assert a.panels_test["retain"] == b.panels_test["retain"]
