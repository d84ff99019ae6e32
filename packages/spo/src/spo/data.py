"""Training data built from the task: SFT examples, preference pairs, and SPO degree examples.

Preference pairs (the paper's alignment data, judged here by ``spo.task.reward``): chosen is the
reference response (probability 1 - p_partial) or the reference with one key fact dropped;
rejected is a response of the SFT model itself (a temperature-1 sample, as the rejected half of
Anthropic-HH-style data comes from a model) whose reward is strictly lower than the chosen one's.
When a sample is not worse (the model got everything right), a synthetic rejected response takes
its place: 1-2 key facts with a wrong value (another author's value of the same attribute) and
0-1 dropped facts. The pairs are fixed before training (offline DPO).

SPO degree data (paper Sec. 3, "self-supervised preference degree"): the *selector* extracts the
key content of a response (the paper: RAKE keyphrases; here the K = 4 key-fact sentences, which
is exactly what a selector should output); removing m of them (m = 0..K-1) gives a response with a
graded preference degree, and m is the class label. Only chosen (reference) responses are
degraded (assumption: the paper's figure degrades the preferred response).

Control (notes, risks): the same construction, but the "selector" picks a *non-key* span: m of the
4 sentences are rewritten into an equivalent second phrasing ("Born in X." -> "Place of birth: X.").
The response keeps every fact, so its reward is 4 whatever m is: the degree label no longer
tracks preference, while the classification task stays as learnable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from spo.task import KEY_ATTRIBUTES, Entity, fact_sentence, response_text, reward


@dataclass(frozen=True)
class Pair:
    entity: Entity
    chosen: str
    rejected: str
    sampled: bool = False  # rejected is a model sample (else a synthetic corruption)


@dataclass(frozen=True)
class DegreeExample:
    entity: Entity
    text: str
    label: int  # m, the number of key units removed (or, in the control, rewritten)


def wrong_value(entity: Entity, attribute: str, pool: list[Entity], rng: random.Random) -> str:
    """Another author's value of ``attribute`` that differs from this author's."""
    while True:
        v = rng.choice(pool).values[attribute]
        if v != entity.values[attribute]:
            return v


def make_pairs(
    entities: list[Entity],
    pairs_per_entity: int,
    p_partial: float,
    seed: int,
    samples: list[list[str]] | None = None,
) -> list[Pair]:
    """``pairs_per_entity`` (chosen, rejected) pairs per author; reward(chosen) > reward(rejected).

    ``samples[i][j]``: the j-th model sample for author i, used as the j-th rejected response when
    its reward is below the chosen one's (else a synthetic corruption is drawn).
    """
    if samples is not None and (
        len(samples) != len(entities) or any(len(s) < pairs_per_entity for s in samples)
    ):
        raise ValueError("samples must hold pairs_per_entity responses for every entity")
    rng = random.Random(f"spo-pairs-{seed}")
    pairs = []
    for i, e in enumerate(entities):
        for j in range(pairs_per_entity):
            keep_c = list(KEY_ATTRIBUTES)
            if rng.random() < p_partial:
                keep_c.remove(rng.choice(keep_c))
            chosen = response_text(e, tuple(keep_c))
            if samples is not None and reward(samples[i][j], e) < reward(chosen, e):
                pairs.append(Pair(e, chosen, samples[i][j].strip(), sampled=True))
                continue
            while True:
                n_wrong = rng.choice((1, 2))
                n_drop = rng.choice((0, 1))
                attrs = list(KEY_ATTRIBUTES)
                rng.shuffle(attrs)
                dropped = set(attrs[:n_drop])
                wrong = {a: wrong_value(e, a, entities, rng) for a in attrs[n_drop : n_drop + n_wrong]}
                keep_r = tuple(a for a in KEY_ATTRIBUTES if a not in dropped)
                rejected = response_text(e, keep_r, wrong)
                if reward(rejected, e) < reward(chosen, e):
                    break
            pairs.append(Pair(e, chosen, rejected))
    return pairs


def remove_key_units(entity: Entity, m: int, rng: random.Random) -> str:
    """The reference response with ``m`` key-fact sentences removed (the SPO degraded response)."""
    keep = list(KEY_ATTRIBUTES)
    rng.shuffle(keep)
    return response_text(entity, tuple(keep[m:]))


def rewrite_non_key_units(entity: Entity, m: int, rng: random.Random) -> str:
    """Control: the reference response with ``m`` sentences in the second phrasing (same reward)."""
    attrs = list(KEY_ATTRIBUTES)
    rng.shuffle(attrs)
    rewritten = set(attrs[:m])
    return " ".join(fact_sentence(entity, a, alt=a in rewritten) for a in KEY_ATTRIBUTES)


def make_degree_examples(entities: list[Entity], n_classes: int, mode: str, seed: int) -> list[DegreeExample]:
    """One degraded response per (author, m) for m = 0..n_classes-1; mode "key" (SPO) or "control"."""
    if mode not in ("key", "control"):
        raise ValueError(f"mode must be 'key' or 'control', got {mode!r}")
    if not 1 < n_classes <= len(KEY_ATTRIBUTES):
        raise ValueError(f"n_classes must be in 2..{len(KEY_ATTRIBUTES)}, got {n_classes}")
    rng = random.Random(f"spo-degree-{mode}-{seed}")
    fn = remove_key_units if mode == "key" else rewrite_non_key_units
    return [DegreeExample(e, fn(e, m, rng), m) for e in entities for m in range(n_classes)]


def encode(tokenizer: Any, entity: Entity, response: str):
    """A chat example (``xentlab.lm.train.Example``) whose loss mask covers the response only."""
    from xentlab.lm.train import sft_example

    return sft_example(tokenizer, entity.prompt_question, response)
