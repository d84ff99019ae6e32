"""The fictitious-author fact generator: determinism, splits, templates, the cipher language."""

from __future__ import annotations

import re

import pytest

from xentlab.data.facts import (
    ATTRIBUTES,
    HELDOUT_TEMPLATES,
    TRAIN_TEMPLATES,
    Cipher,
    FactsConfig,
    make_fact_bank,
    template_vocabulary,
    tokenizer_corpus,
    value_pools,
)


def test_same_seed_same_bank_other_seed_other_bank():
    a, b, c = make_fact_bank(seed=3), make_fact_bank(seed=3), make_fact_bank(seed=4)
    assert a.authors == b.authors and a.values == b.values and a.forget_authors == b.forget_authors
    assert a.authors != c.authors


def test_forget_and_retain_split_the_authors():
    bank = make_fact_bank(FactsConfig(n_authors=40, forget_frac=0.1), seed=0)
    assert len(bank.authors) == len(set(bank.authors)) == 40
    assert len(bank.forget_authors) == 4  # 10% of 40
    assert set(bank.forget_authors).isdisjoint(bank.retain_authors)
    assert set(bank.forget_authors) | set(bank.retain_authors) == set(bank.authors)
    assert len(bank.forget_facts) == 4 * len(ATTRIBUTES)


def test_values_come_from_the_pools_and_answers_state_them():
    bank = make_fact_bank(FactsConfig(n_authors=10, attributes=("birthplace", "award")), seed=1)
    pools = value_pools()
    for fact in bank.facts():
        assert fact.value in pools[fact.attribute]
        for t in range(5):
            qa = bank.qa(fact, t)
            assert fact.author in qa.question and fact.value not in qa.question
            assert qa.answer == ATTRIBUTES[fact.attribute].answer.format(name=fact.author, value=fact.value)


def test_heldout_paraphrases_differ_from_training_templates():
    assert (
        set(TRAIN_TEMPLATES).isdisjoint(HELDOUT_TEMPLATES) and len(TRAIN_TEMPLATES + HELDOUT_TEMPLATES) == 5
    )
    for spec in ATTRIBUTES.values():
        assert len(set(spec.questions)) == 5


def test_names_are_invented_capitalised_words():
    bank = make_fact_bank(FactsConfig(n_authors=50), seed=2)
    assert all(re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", n) for n in bank.authors)


def test_cipher_is_a_bijection_that_keeps_names_values_and_punctuation():
    cipher = Cipher()
    vocab = template_vocabulary()
    assert len(set(cipher.forward.values())) == len(vocab)  # injective
    assert set(cipher.forward.values()).isdisjoint(vocab)  # really another language
    for spec in ATTRIBUTES.values():
        for t in (*spec.questions, spec.answer):
            enc = cipher.encode(t)
            assert cipher.decode(enc) == t
            assert enc.count("{name}") == t.count("{name}") and enc[-1] == t[-1]
    bank = make_fact_bank(seed=0)
    fact = bank.forget_facts[0]
    qa = bank.qa(fact, 0, "cipher")
    assert fact.author in qa.question and qa.answer.endswith(f"{fact.value}.") and qa.lang == "cipher"
    assert qa.question != bank.qa(fact, 0).question


def test_cipher_is_the_same_language_for_every_seed():
    assert make_fact_bank(seed=0).cipher.forward == make_fact_bank(seed=9).cipher.forward


def test_tokenizer_corpus_is_independent_of_run_seeds():
    assert tokenizer_corpus(1) == tokenizer_corpus(1)
    assert any("Prize" in t for t in tokenizer_corpus(1))


def test_bad_config_raises():
    with pytest.raises(ValueError, match="unknown attributes"):
        FactsConfig(attributes=("shoe_size",))
    with pytest.raises(ValueError, match="forget_frac"):
        FactsConfig(forget_frac=1.0)
    with pytest.raises(ValueError, match="lang"):
        bank = make_fact_bank(FactsConfig(n_authors=4), seed=0)
        bank.qa(bank.facts()[0], 0, "klingon")
