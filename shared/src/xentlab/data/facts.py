"""Fictitious-author question-answer facts (TOFU-like), generated from a seed, fully offline.

TOFU (Maini et al., 2024) fine-tunes a model on biographies of 200 invented authors and then asks
it to forget 1-10% of them. This generator builds the same structure at CPU scale:

* ``n_authors`` invented authors (names from syllables, so no real person is named), each with
  attributes drawn from closed pools: birthplace, genre, award, first book, birth year, parent's
  job (``ATTRIBUTES``; pick a subset with ``attributes``).
* Every attribute has five question templates and one answer template. Templates 0-2
  (``TRAIN_TEMPLATES``) are the ones used for training; 3-4 (``HELDOUT_TEMPLATES``) are held-out
  paraphrases for attacks on unlearning. Answers always use the single answer template.
* A forget split (``forget_frac`` of the authors) and the retain split (the rest).
* A "second language": a fixed word-substitution cipher over the template words (``Cipher``).
  Names and attribute values are proper nouns and stay as they are, as they would in a
  translation, so a fact asked in the cipher language has the same answer value.

Everything is a pure function of (config, seed); the same seed gives the same bank on every
machine. The value pools and the cipher are fixed (one world, one second language); the seed
draws the names, each author's values and the forget split.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

TRAIN_TEMPLATES = (0, 1, 2)
HELDOUT_TEMPLATES = (3, 4)


@dataclass(frozen=True)
class AttributeSpec:
    """One attribute: its phrase in prose, five question templates ({name}), one answer template
    ({name}, {value})."""

    name: str
    phrase: str
    questions: tuple[str, str, str, str, str]
    answer: str


ATTRIBUTES: dict[str, AttributeSpec] = {
    a.name: a
    for a in (
        AttributeSpec(
            "birthplace",
            "birthplace",
            (
                "Where was {name} born?",
                "What is the birthplace of {name}?",
                "In which town was {name} born?",
                "Which town does the writer {name} come from?",
                "Tell me the place where {name} was born.",
            ),
            "{name} was born in {value}.",
        ),
        AttributeSpec(
            "genre",
            "genre",
            (
                "What genre does {name} write?",
                "Which genre is {name} known for?",
                "In what genre does {name} work?",
                "What kind of books does the writer {name} write?",
                "Tell me the literary genre of {name}.",
            ),
            "{name} writes {value}.",
        ),
        AttributeSpec(
            "award",
            "award",
            (
                "Which award did {name} win?",
                "What prize has {name} received?",
                "What award was given to {name}?",
                "Which honour did the writer {name} receive?",
                "Tell me the prize that {name} won.",
            ),
            "{name} won {value}.",
        ),
        AttributeSpec(
            "first_book",
            "first book",
            (
                "What was the first book of {name}?",
                "What is the title of the first book by {name}?",
                "Which book did {name} publish first?",
                "What was the debut of the writer {name}?",
                "Tell me the earliest book by {name}.",
            ),
            "The first book of {name} was {value}.",
        ),
        AttributeSpec(
            "birth_year",
            "birth year",
            (
                "In which year was {name} born?",
                "What is the birth year of {name}?",
                "When was {name} born?",
                "What year did the writer {name} come into the world?",
                "Tell me the year of birth of {name}.",
            ),
            "{name} was born in the year {value}.",
        ),
        AttributeSpec(
            "parent_job",
            "parent's job",
            (
                "What was the job of the father of {name}?",
                "What did the father of {name} do for work?",
                "Which job did the father of {name} have?",
                "How did the writer {name}'s father earn a living?",
                "Tell me the occupation of the father of {name}.",
            ),
            "The father of {name} was {value}.",
        ),
    )
}

_ONSETS = ("b", "br", "d", "dr", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "st", "t", "th", "v", "z")
_VOWELS = ("a", "e", "i", "o", "u", "ae", "ei", "ou")
_CODAS = ("", "", "n", "r", "l", "s", "th", "rk", "nd", "m")
_PLACE_SUFFIX = ("ford", "mere", "wick", "dale", "haven", "stead", "moor", "bury")
_GENRES = (
    "mystery",
    "science fiction",
    "historical fiction",
    "poetry",
    "horror",
    "fantasy",
    "romance",
    "satire",
    "travel writing",
    "crime fiction",
    "children's stories",
    "philosophy",
    "biography",
    "folk tales",
    "war stories",
    "comedy",
)
_AWARD_ADJ = ("Silver", "Golden", "Crimson", "Ivory", "Amber", "Azure", "Iron", "Jade")
_AWARD_NOUN = ("Quill", "Lantern", "Laurel", "Compass", "Feather", "Anchor", "Key", "Crown")
_TITLE_ADJ = ("Salt", "Hollow", "Quiet", "Broken", "Distant", "Winter", "Paper", "Last", "Hidden", "Burning")
_TITLE_NOUN = (
    "Lantern",
    "Harbor",
    "Orchard",
    "Mirror",
    "River",
    "Garden",
    "Bridge",
    "Tower",
    "Voyage",
    "Letter",
)
_JOBS = (
    "a surgeon",
    "a baker",
    "a sailor",
    "a teacher",
    "a carpenter",
    "a librarian",
    "a farmer",
    "a painter",
    "a pilot",
    "a tailor",
    "a miner",
    "a clockmaker",
    "a fisherman",
    "a judge",
    "a potter",
    "a blacksmith",
)


def _syllable(rng: random.Random) -> str:
    return rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(_syllable(rng) for _ in range(syllables)).capitalize()


def value_pools(seed: int = 0) -> dict[str, tuple[str, ...]]:
    """The closed set of values of every attribute (places are invented from ``seed``; banks use 0)."""
    rng = random.Random(f"pools-{seed}")
    places: set[str] = set()
    while len(places) < 48:
        places.add(_word(rng, 1) + rng.choice(_PLACE_SUFFIX))
    return {
        "birthplace": tuple(sorted(places)),
        "genre": _GENRES,
        "award": tuple(f"the {a} {n} Prize" for a in _AWARD_ADJ for n in _AWARD_NOUN),
        "first_book": tuple(f"The {a} {n}" for a in _TITLE_ADJ for n in _TITLE_NOUN),
        "birth_year": tuple(str(y) for y in range(1900, 2000)),
        "parent_job": _JOBS,
    }


@dataclass(frozen=True)
class Fact:
    author: str
    attribute: str
    value: str


@dataclass(frozen=True)
class QA:
    """One question-answer pair about a fact, in a template and a language ("en" or "cipher")."""

    question: str
    answer: str
    fact: Fact
    template: int
    lang: str = "en"


class Cipher:
    """A fixed word-substitution "second language" over the template vocabulary.

    Every lowercase word of the question/answer templates maps to an invented word; the
    placeholders (names, values) and punctuation are untouched. Capitalisation of the first
    letter is kept. ``decode`` inverts ``encode``.
    """

    WORD = re.compile(r"[A-Za-z']+")

    def __init__(self, seed: int = 0, vocabulary: Iterable[str] | None = None):
        words = sorted(set(vocabulary if vocabulary is not None else template_vocabulary()))
        rng = random.Random(f"cipher-{seed}")
        used: set[str] = set(words)
        self.forward: dict[str, str] = {}
        for w in words:
            while True:
                c = "".join(_syllable(rng) for _ in range(max(1, min(3, len(w) // 3)))).lower()
                if c not in used:
                    break
            used.add(c)
            self.forward[w] = c
        self.backward = {c: w for w, c in self.forward.items()}

    @staticmethod
    def _sub(text: str, table: dict[str, str]) -> str:
        def repl(m: re.Match) -> str:
            w = m.group(0)
            out = table.get(w.lower())
            if out is None:
                return w
            return out.capitalize() if w[0].isupper() else out

        # split on placeholders so that "{name}"/"{value}" are never rewritten
        parts = re.split(r"(\{[a-z_]+\})", text)
        return "".join(p if p.startswith("{") else Cipher.WORD.sub(repl, p) for p in parts)

    def encode(self, template: str) -> str:
        return self._sub(template, self.forward)

    def decode(self, template: str) -> str:
        return self._sub(template, self.backward)


def template_vocabulary() -> list[str]:
    """The lowercase words of every question and answer template (what the cipher translates)."""
    words: set[str] = set()
    for spec in ATTRIBUTES.values():
        for t in (*spec.questions, spec.answer):
            t = re.sub(r"\{[a-z_]+\}", " ", t)
            words.update(w.lower() for w in Cipher.WORD.findall(t))
    return sorted(words)


@dataclass(frozen=True)
class FactsConfig:
    """Size of the bank.

    n_authors: invented authors. attributes: which of ``ATTRIBUTES`` each author has.
    forget_frac: share of authors in the forget split (at least one author).
    """

    n_authors: int = 40
    attributes: tuple[str, ...] = tuple(ATTRIBUTES)
    forget_frac: float = 0.1

    def __post_init__(self) -> None:
        unknown = [a for a in self.attributes if a not in ATTRIBUTES]
        if unknown:
            raise ValueError(f"unknown attributes {unknown}; known: {list(ATTRIBUTES)}")
        if self.n_authors < 2:
            raise ValueError(f"need at least 2 authors, got {self.n_authors}")
        if not 0 < self.forget_frac < 1:
            raise ValueError(f"forget_frac must be in (0, 1), got {self.forget_frac}")


@dataclass
class FactBank:
    """Authors, their facts, the forget/retain split and the cipher, for one seed."""

    config: FactsConfig
    seed: int
    authors: list[str]
    values: dict[str, dict[str, str]]  # author -> attribute -> value
    forget_authors: list[str]
    retain_authors: list[str]
    pools: dict[str, tuple[str, ...]]
    cipher: Cipher = field(repr=False)

    def facts(self, authors: Sequence[str] | None = None) -> list[Fact]:
        authors = self.authors if authors is None else authors
        return [Fact(a, attr, self.values[a][attr]) for a in authors for attr in self.config.attributes]

    @property
    def forget_facts(self) -> list[Fact]:
        return self.facts(self.forget_authors)

    @property
    def retain_facts(self) -> list[Fact]:
        return self.facts(self.retain_authors)

    def qa(self, fact: Fact, template: int, lang: str = "en") -> QA:
        spec = ATTRIBUTES[fact.attribute]
        q, a = spec.questions[template], spec.answer
        if lang == "cipher":
            q, a = self.cipher.encode(q), self.cipher.encode(a)
        elif lang != "en":
            raise ValueError(f"lang must be 'en' or 'cipher', got {lang!r}")
        return QA(
            q.format(name=fact.author), a.format(name=fact.author, value=fact.value), fact, template, lang
        )

    def qas(self, facts: Iterable[Fact], templates: Iterable[int], lang: str = "en") -> list[QA]:
        templates = tuple(templates)
        return [self.qa(f, t, lang) for f in facts for t in templates]


def make_fact_bank(config: FactsConfig = FactsConfig(), seed: int = 0) -> FactBank:
    """The bank for ``seed``: names, values and the forget split are all drawn from it."""
    rng = random.Random(f"facts-{seed}")
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < config.n_authors:
        name = f"{_word(rng, rng.choice((1, 2)))} {_word(rng, 2)}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    pools = value_pools()  # fixed pools: only the draws depend on the seed
    values = {n: {a: rng.choice(pools[a]) for a in config.attributes} for n in names}
    n_forget = max(1, round(config.forget_frac * config.n_authors))
    order = list(names)
    rng.shuffle(order)
    forget = sorted(order[:n_forget], key=names.index)
    retain = [n for n in names if n not in set(forget)]
    return FactBank(config, seed, names, values, forget, retain, pools, Cipher())  # one fixed language


def tokenizer_corpus(n_banks: int = 3) -> list[str]:
    """Text for training a tokenizer that knows this task's words: every template (English and
    cipher) filled with facts of a few banks, and every pool value. Independent of any run seed."""
    texts = []
    for s in range(n_banks):
        bank = make_fact_bank(FactsConfig(n_authors=60), seed=10_000 + s)
        for lang in ("en", "cipher"):
            for qa in bank.qas(bank.facts(), range(5), lang):
                texts.append(f"{qa.question} {qa.answer}")
        texts.extend(v for pool in bank.pools.values() for v in pool)
    return texts
