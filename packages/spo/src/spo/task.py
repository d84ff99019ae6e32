"""The cpu-scale task: list the K = 4 key facts of a fictitious author from a profile.

A prompt holds a *profile* of an invented author (values from ``xentlab.data.facts``): six
attributes in a seeded random order, four of them key (birthplace, genre, award, first book) and
two distractors (birth year, father's job), and asks for the key facts:

    Prize: the Golden Anchor Prize. Father: a clockmaker. Year: 1982. Debut: The Hidden Harbor.
    Town: Timbury. Genre: fantasy. List the key facts.

The reference response states the four key facts, one short sentence each, in a fixed order:

    Born in Timbury. Writes fantasy. Won the Golden Anchor Prize. First book: The Hidden Harbor.

(The author's name is left out of prompt and response: it adds ~40 tokens of invented syllables
per sequence and nothing to the task; compute scales with sequence length.)

The facts are in the prompt, so the task transfers to held-out authors (a copy-and-format task,
like the summarisation half of the paper's benchmark), and a tiny model stopped early makes
real mistakes: wrong values (a distractor or a value from its training set), dropped facts.

The judge (the "human preference" proxy that replaces the paper's GPT-4 judge, notes Sec. 5):
reward = #correct key facts - #wrong key facts, in [-4, 4]. A key fact is read from the first
sentence that matches its answer template; a missing sentence counts 0, a wrong value -1.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from xentlab.data.facts import FactBank, FactsConfig, make_fact_bank

KEY_ATTRIBUTES = ("birthplace", "genre", "award", "first_book")  # the K = 4 key facts, in answer order
DISTRACTORS = ("birth_year", "parent_job")
PROFILE_LABELS = {
    "birthplace": "Town",
    "genre": "Genre",
    "award": "Prize",
    "first_book": "Debut",
    "birth_year": "Year",
    "parent_job": "Father",
}
QUESTION = "{profile} List the key facts."
# The answer sentence of each key fact, and an equivalent second phrasing that the judge accepts
# just as well (used only by the control degree task, spo.data.rewrite_non_key_units).
ANSWER = {
    "birthplace": "Born in {v}.",
    "genre": "Writes {v}.",
    "award": "Won {v}.",
    "first_book": "First book: {v}.",
}
ALT_ANSWER = {
    "birthplace": "Place of birth: {v}.",
    "genre": "Genre: {v}.",
    "award": "Award: {v}.",
    "first_book": "Debut: {v}.",
}
# One regex per key attribute, matched against one sentence (without its final '.'): either phrasing.
_PATTERNS = {
    "birthplace": re.compile(r"^(?:Born in|Place of birth:) (.+)$"),
    "genre": re.compile(r"^(?:Writes|Genre:) (.+)$"),
    "award": re.compile(r"^(?:Won|Award:) (.+)$"),
    "first_book": re.compile(r"^(?:First book:|Debut:) (.+)$"),
}


@dataclass(frozen=True)
class Entity:
    """One author: name and the value of every attribute, plus the profile order for the prompt."""

    name: str
    values: dict[str, str]
    order: tuple[str, ...]

    @property
    def prompt_question(self) -> str:
        profile = " ".join(
            fact_sentence(self, a) if a in ANSWER else f"{PROFILE_LABELS[a]}: {self.values[a]}."
            for a in self.order
        )
        return QUESTION.format(profile=profile)


def fact_sentence(entity: Entity, attribute: str, value: str | None = None, *, alt: bool = False) -> str:
    """The answer sentence of one fact (optionally with a wrong value, or in the second phrasing)."""
    value = entity.values[attribute] if value is None else value
    return (ALT_ANSWER if alt else ANSWER)[attribute].format(v=value)


def response_text(entity: Entity, keep: tuple[str, ...] = KEY_ATTRIBUTES, wrong: dict | None = None) -> str:
    """A response stating the facts in ``keep`` (in key order), values overridden by ``wrong``."""
    wrong = wrong or {}
    return " ".join(fact_sentence(entity, a, wrong.get(a)) for a in KEY_ATTRIBUTES if a in keep)


def split_sentences(text: str) -> list[str]:
    """Sentences of a response: split after '.' followed by a space (values contain no '.')."""
    return [s.strip().rstrip(".").strip() for s in re.split(r"(?<=\.)\s+", text.strip()) if s.strip()]


def read_facts(text: str) -> dict[str, str]:
    """attribute -> stated value, from the first sentence matching each key attribute's template."""
    found: dict[str, str] = {}
    for sentence in split_sentences(text):
        for attr in KEY_ATTRIBUTES:  # the patterns' lead words are disjoint: at most one matches
            if attr in found:
                continue
            m = _PATTERNS[attr].match(sentence)
            if m:
                found[attr] = m.group(1).strip()
                break
    return found


def reward(text: str, entity: Entity) -> int:
    """#correct - #wrong key facts stated in ``text`` (the programmatic judge)."""
    stated = read_facts(text)
    return sum(1 if v == entity.values[a] else -1 for a, v in stated.items())


@dataclass
class Task:
    train: list[Entity]  # SFT and preference data
    test: list[Entity]  # held-out authors: every metric
    bank: FactBank


def build_task(n_train: int, n_test: int, seed: int) -> Task:
    """``n_train`` + ``n_test`` distinct authors from the bank of ``seed``; profile orders seeded."""
    attrs = (*KEY_ATTRIBUTES, *DISTRACTORS)
    bank = make_fact_bank(FactsConfig(n_authors=n_train + n_test, attributes=attrs), seed)
    rng = random.Random(f"spo-task-{seed}")
    entities = []
    for name in bank.authors:
        order = list(attrs)
        rng.shuffle(order)
        entities.append(Entity(name, dict(bank.values[name]), tuple(order)))
    return Task(entities[:n_train], entities[n_train:], bank)


def tokenizer_texts() -> list[str]:
    """Task text for the tokenizer, from banks no run uses (so no run's authors shape the vocabulary)."""
    from xentlab.data.facts import tokenizer_corpus

    task = build_task(60, 0, seed=20_000)
    return tokenizer_corpus() + [f"{e.prompt_question} {response_text(e)}" for e in task.train]


def get_task_tokenizer(vocab_size: int):
    from xentlab.data.tokenizer import get_tokenizer

    return get_tokenizer(tokenizer_texts(), vocab_size=vocab_size)
