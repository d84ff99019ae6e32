"""The two NER tasks: entity type given only by LEFT context (control) or only by RIGHT context.

Both come from ``xentlab.data.tagging`` with ``p_ambiguous=1``: every entity span is made of
*ambiguous* words (which also occur as plain O filler) and is always preceded by a trigger word of
its type, so the trigger is the only cue for "is this an entity" and "of which type" (no lexicon cue).

* left: the generator's sentences as they are (trigger before the span);
* right: each sentence reversed, so the trigger FOLLOWS the span; BIO tags are rebuilt on the reversed
  spans (the span's first token gets B-). The two tasks are exact mirror images with the same
  statistics, so only the side of the cue differs. The shared generator is left untouched.

A causal decoder (LS-LLaMA) cannot see the trigger at any token of a span in the right task;
LS-unLLaMA can. In the left task both can.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from xentlab.data.tagging import TaggingConfig, TaggingData, TaggingSplit, make_tagging

TASKS = ("left", "right")


def spans(tags: np.ndarray) -> list[tuple[int, int, int]]:
    """(type, start, end_exclusive) of the BIO spans in a tag-id sequence (O=0, B=1+2k, I=2+2k)."""
    out, i, n = [], 0, len(tags)
    while i < n:
        t = int(tags[i])
        if t > 0:
            k, j = (t - 1) // 2, i + 1
            while j < n and int(tags[j]) == 2 + 2 * k:
                j += 1
            out.append((k, i, j))
            i = j
        else:
            i += 1
    return out


def reverse_sentence(tokens: np.ndarray, tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tokens reversed, and BIO tags of the same spans on the reversed order."""
    n = len(tokens)
    new = np.zeros(n, dtype=np.int64)
    for k, s, e in spans(tags):
        rs, re_ = n - e, n - s
        new[rs] = 1 + 2 * k
        new[rs + 1 : re_] = 2 + 2 * k
    return tokens[::-1].copy(), new


def _reverse_split(split: TaggingSplit) -> TaggingSplit:
    pairs = [reverse_sentence(a, b) for a, b in zip(split.tokens, split.tags)]
    return TaggingSplit([p[0] for p in pairs], [p[1] for p in pairs])


def task_config(**overrides) -> TaggingConfig:
    """Context-only typing: all spans ambiguous words with a trigger, no lexicon cue, no label noise."""
    base = TaggingConfig(
        n_types=3,
        p_ambiguous=1.0,
        p_trigger=1.0,
        n_shared=2,  # unused (every span is ambiguous); kept at 2 so the finished NER units stay valid
        p_decoy=0.03,
        label_noise=0.0,
        p_ambiguous_filler=0.15,
        filler_len=(6, 14),
        filler_vocab=60,
        n_ambiguous=20,
        lexicon_per_type=2,
        triggers_per_type=2,
        max_span=2,
    )
    return replace(base, **overrides)


def make_task(task: str, cfg: TaggingConfig, seed: int) -> TaggingData:
    """The ``task`` ("left" or "right") data for ``seed``; both tasks share the world and sentences."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    data = make_tagging(cfg, seed)
    if task == "left":
        return data
    return replace(
        data, train=_reverse_split(data.train), val=_reverse_split(data.val), test=_reverse_split(data.test)
    )
