"""The TRU task on fictitious authors: who is forgotten, what each phase trains on, what is measured.

Splits (all drawn from the seed; templates are those of ``xentlab.data.facts``):

| set | authors | templates | used for |
|---|---|---|---|
| fine-tuning (the original model) | forget | English 0-2 | learning the facts to be forgotten |
|  | "private" (n_private, neither forget nor retain) | English 0-4 | refusal ability before unlearning: half answered with reasoning + refusal, half with a refusal only |
|  | all retain | English 0-4, cipher 0..n_cipher-1 | the facts to keep, the paraphrases and the second language |
| unlearning forget set D_u | forget | English 0, 1 | every method's forget term / TRU targets |
| unlearning retain set D_r | retain "train" authors (4/6 of them) | English 0, 1 | GradDiff's retain term |
| validation (selects alpha, lr) | forget / retain "val" sixth | English 2 / English 0 | never in any unlearning loss |
| test: in-template | forget | English 0, 1 | forget exact match, refusal, gibberish |
| test: paraphrase | forget | English 3, 4 | never seen for forget authors |
| test: cipher | forget | cipher 0..n_cipher-1 | never seen for forget authors |
| test: retain | retain "train" authors | English 2 | retain exact match, over-refusal (TOFU-style: the retain set's authors, a template outside D_r) |
| test: retain_other | retain "other" sixth | English 0, 2 | the same for authors outside D_r (stricter) |
| relearning attack | forget half A / half B | 0-2 / 0, 1 | fine-tune on A, then measure B |
| test: cipher_retain | retain "other" sixth | cipher 0 | the general-skill probe: the second language, outside D_r |

No held-out paraphrase (templates 3-4) or cipher query of a forget author appears in any
training set or target.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from xentlab.data.cache import source_digest
from xentlab.data.facts import QA, FactBank, FactsConfig, make_fact_bank

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the base-model cache key (``tru.base.base_code``)"""

UNLEARN_TEMPLATES = (0, 1)
VAL_TEMPLATE = 2
PARAPHRASE_TEMPLATES = (3, 4)
RETAIN_UNLEARN_TEMPLATES = (0, 1)
RETAIN_TEST_TEMPLATE = 2


@dataclass
class Task:
    bank: FactBank
    private_authors: list[str]  # refused already by the original model (its refusal ability)
    finetune: list[QA]  # what the original model is fine-tuned on
    forget_unlearn: list[QA]  # D_u: forget queries with their true answers (templates 0, 1)
    retain_unlearn: list[QA]  # D_r
    panels_val: dict[str, list[QA]]
    panels_test: dict[str, list[QA]]
    relearn_train: list[QA]
    relearn_test: list[QA]


def build_task(
    seed: int,
    *,
    n_authors: int = 40,
    attributes: tuple[str, ...] = ("birthplace", "genre", "award", "first_book"),
    forget_frac: float = 0.1,
    n_cipher: int = 2,
    n_private: int = 4,
) -> Task:
    """The splits for ``seed``: ``n_authors`` forget + retain authors, plus ``n_private`` more."""
    from tru.targets import target_text

    frac = forget_frac * n_authors / (n_authors + n_private)  # forget_frac of the n_authors
    bank = make_fact_bank(
        FactsConfig(n_authors=n_authors + n_private, attributes=tuple(attributes), forget_frac=frac), seed
    )
    rng = random.Random(f"tru-splits-{seed}")
    retain = list(bank.retain_authors)
    rng.shuffle(retain)
    private, retain = retain[:n_private], retain[n_private:]
    bank.retain_authors = sorted(retain, key=bank.authors.index)
    sixth = max(1, len(retain) // 6)
    r_other, r_val, r_train = retain[:sixth], retain[sixth : 2 * sixth], retain[2 * sixth :]
    if not r_train:
        raise ValueError(f"n_authors={n_authors} leaves no retain author for D_r")
    cipher_t = tuple(range(n_cipher))
    ff = bank.forget_facts
    finetune = (
        bank.qas(ff, (0, 1, 2))
        + bank.qas(bank.retain_facts, range(5))
        + (bank.qas(bank.retain_facts, cipher_t, "cipher") if n_cipher else [])
    )
    refusals = []
    for i, fact in enumerate(bank.facts(private)):
        reasoning = (i // len(attributes)) % 2 == 0  # alternate authors between the two formats
        text = target_text(fact, reasoning=reasoning)
        refusals += [QA(qa.question, text, fact, qa.template) for qa in bank.qas([fact], range(5))]
    finetune += refusals
    facts_shuffled = list(ff)
    rng.shuffle(facts_shuffled)
    half = max(1, len(ff) // 2)
    relearn_a, relearn_b = facts_shuffled[:half], facts_shuffled[half:] or facts_shuffled[:half]
    panels_val = {
        "forget": bank.qas(ff, (VAL_TEMPLATE,)),
        "retain": bank.qas(bank.facts(r_val), (0,)),
    }
    panels_test = {
        "forget": bank.qas(ff, UNLEARN_TEMPLATES),
        "paraphrase": bank.qas(ff, PARAPHRASE_TEMPLATES),
        "retain": bank.qas(bank.facts(r_train), (RETAIN_TEST_TEMPLATE,)),
        "retain_other": bank.qas(bank.facts(r_other), (0, 2)),
    }
    if n_cipher:
        panels_test["cipher"] = bank.qas(ff, cipher_t, "cipher")
        # the general-skill probe: the second language on authors outside D_r
        panels_test["cipher_retain"] = bank.qas(bank.facts(r_other), (0,), "cipher")
    return Task(
        bank=bank,
        private_authors=private,
        finetune=finetune,
        forget_unlearn=bank.qas(ff, UNLEARN_TEMPLATES),
        retain_unlearn=bank.qas(bank.facts(r_train), RETAIN_UNLEARN_TEMPLATES),
        panels_val=panels_val,
        panels_test=panels_test,
        relearn_train=bank.qas(relearn_a, (0, 1, 2)),
        relearn_test=bank.qas(relearn_b, UNLEARN_TEMPLATES),
    )
