"""RAKE keyphrase extraction (Rose, Engel, Cramer, Cowley 2010, "Automatic keyword extraction from
individual documents"): SPO's selector at ``--scale full``.

A review of the SPO paper names RAKE as its selector; no RAKE package is a dependency of this
workspace (``nltk`` is present, but ``rake-nltk`` is not), so the algorithm is written here:

1. candidate phrases: maximal runs of content words, split at stop words and at punctuation;
2. word scores: deg(w) / freq(w), where freq(w) counts w's occurrences in candidates and deg(w)
   sums the lengths (in words) of the candidates w occurs in (its co-occurrence degree, itself
   included; RAKE Sec. 1.2.3);
3. a candidate's score is the sum of its words' scores; candidates are ranked by score (ties: first
   occurrence first), and each distinct phrase (lower-cased) appears once, with every character span
   where it occurs, so that a caller can delete it from the text.

The stop list is Fox's (1989) list, the one RAKE's evaluation used, shortened to common function
words; numbers are kept as content words (facts such as "1982" count as key content).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STOPWORDS = frozenset(
    """a about above across after again against all almost alone along already also although always am
    among an and another any anybody anyone anything anywhere are area areas around as ask asked asking
    asks at away b back backed be became because become becomes been before began behind being beings
    best better between big both but by c came can cannot case cases certain certainly clear clearly
    come could d did differ different differently do does done down downed during e each early either
    end ended ending ends enough even evenly ever every everybody everyone everything everywhere f face
    faces fact facts far felt few find finds first for four from full fully further furthered g gave
    general generally get gets give given gives go going good goods got great greater greatest group h
    had has have having he her here herself high higher highest him himself his how however i if im
    important in interest interested into is it its itself j just k keep keeps kind knew know known knows
    l large largely last later latest least less let lets like likely long longer longest m made make
    making man many may me member members men might more most mostly mr mrs much must my myself n
    necessary need needed needing needs never new newer newest next no nobody non noone not nothing now
    nowhere number numbers o of off often old older oldest on once one only open opened opening opens or
    order ordered ordering orders other others our out over p part parted parting parts per perhaps place
    places point pointed pointing points possible present presented presenting presents problem problems
    put puts q quite r rather really right room rooms s said same saw say says second seconds see seem
    seemed seeming seems sees several shall she should show showed showing shows side sides since small
    smaller smallest so some somebody someone something somewhere state states still such sure t take
    taken than that the their them then there therefore these they thing things think thinks this those
    though thought thoughts three through thus to today together too took toward turn turned turning turns
    two u under until up upon us use used uses v very w want wanted wanting wants was way ways we well
    wells went were what when where whether which while who whole whose why will with within without work
    worked working works would x y year years yet you young younger youngest your yours z
    dont doesnt didnt isnt arent wasnt werent cant couldnt wouldnt shouldnt wont ive youre youve theyre
    thats whats lets hes shes""".split()
)

# a word (letters, digits, inner apostrophes / hyphens) or one punctuation mark (a phrase boundary)
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['’-][A-Za-z0-9]+)*|[^\sA-Za-z0-9]")


@dataclass(frozen=True)
class Keyphrase:
    """A distinct candidate phrase (lower-cased words joined by spaces), its RAKE score, and the
    (start, end) character spans of every occurrence in the text."""

    phrase: str
    score: float
    spans: tuple[tuple[int, int], ...]


def _is_stop(word: str) -> bool:
    return word.lower().replace("'", "").replace("’", "") in STOPWORDS


def candidates(text: str) -> list[tuple[list[str], tuple[int, int]]]:
    """Candidate phrases in order: (lower-cased words, character span of this occurrence)."""
    out: list[tuple[list[str], tuple[int, int]]] = []
    words: list[str] = []
    start = end = 0
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        is_word = tok[0].isalnum()
        if is_word and not _is_stop(tok):
            if not words:
                start = m.start()
            words.append(tok.lower())
            end = m.end()
            continue
        if words:  # a stop word or punctuation ends the run
            out.append((words, (start, end)))
            words = []
    if words:
        out.append((words, (start, end)))
    return out


def rake(text: str, *, max_words: int = 4) -> list[Keyphrase]:
    """Distinct candidate phrases of ``text`` ranked by RAKE score (highest first).

    Candidates longer than ``max_words`` words are dropped (RAKE keeps short phrases; long runs of
    content words are mostly lists or noise).
    """
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    cands = [(w, s) for w, s in candidates(text) if len(w) <= max_words]
    freq: dict[str, int] = {}
    degree: dict[str, int] = {}
    for words, _ in cands:
        for w in words:
            freq[w] = freq.get(w, 0) + 1
            degree[w] = degree.get(w, 0) + len(words)  # co-occurrences within the phrase, itself included
    word_score = {w: degree[w] / freq[w] for w in freq}
    phrases: dict[str, list] = {}  # phrase -> [score, first position, spans]
    for pos, (words, span) in enumerate(cands):
        key = " ".join(words)
        if key not in phrases:
            phrases[key] = [sum(word_score[w] for w in words), pos, []]
        phrases[key][2].append(span)
    ranked = sorted(phrases.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
    return [Keyphrase(k, float(v[0]), tuple(v[2])) for k, v in ranked]


def remove_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with the character ``spans`` deleted; runs of spaces are collapsed, and a space left
    before punctuation is dropped."""
    keep, last = [], 0
    for s, e in sorted(spans):
        if s < last:  # overlapping spans: skip what is already removed
            s = last
        keep.append(text[last:s])
        last = max(last, e)
    keep.append(text[last:])
    out = re.sub(r"[ \t]{2,}", " ", "".join(keep))
    return re.sub(r" +([.,;:!?])", r"\1", out).strip()
