"""An SST-5-like sequence-classification task, built from the shared tagging generator.

``xentlab.data.tagging`` with two entity types, no triggers, no ambiguous words and one-word spans
gives sentences of filler words with *sentiment words* anywhere in them: the type-0 ("PER") lexicon
plays the positive words, the type-1 ("LOC") lexicon the negative words. A sentence's label is its net
polarity, clipped to five ordinal classes like SST-5:

    label = clip(#positive words - #negative words, -2, 2) + 2
            (0 very negative, 1 negative, 2 neutral, 3 positive, 4 very positive).

With about 3 sentiment words per sentence (Poisson), #pos - #neg is a Skellam(1.5, 1.5) variable, so
the classes are roughly balanced (~18/20/24/20/18 %). The label needs the whole sentence (a count), and
no single word decides it, which keeps both arms of claim (c) below 100 % accuracy.

For the LM-head arm (label generation) the task also fixes a *prompt word* and one *label word*
(verbalizer) per class. They are ordinary filler words, so the pretrained decoder has seen them
(as a real LLM has seen "positive"); filler is drawn uniformly, so every filler word is alike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from xentlab.data.tagging import TaggingConfig, TaggingData, TaggingSplit, make_tagging

CLASS_NAMES = ("very negative", "negative", "neutral", "positive", "very positive")
POS_B, NEG_B = 1, 3  # tag ids of B-<type 0> and B-<type 1> (O=0, B=1+2k, I=2+2k)


@dataclass
class SentimentData:
    """Token sequences (``tagging.train/val/test``, pad id 0) with one class label per sentence."""

    tagging: TaggingData
    labels: dict[str, np.ndarray]  # "train" / "val" / "test" -> int64 labels in 0..4
    prompt_id: int  # the word after which the LM-head arm generates the label word
    verbalizers: tuple[int, ...]  # label word of class c (single token each)

    @property
    def num_classes(self) -> int:
        return len(CLASS_NAMES)

    @property
    def vocab_size(self) -> int:
        return self.tagging.vocab_size

    def split(self, name: str) -> tuple[TaggingSplit, np.ndarray]:
        return getattr(self.tagging, name), self.labels[name]


def sentiment_config(**overrides) -> TaggingConfig:
    """One-word sentiment spans, lexicon cue only (no triggers, no ambiguity, no noise)."""
    base = TaggingConfig(
        n_types=2,
        max_span=1,
        # E[#sentiment words] = F / o_per_entity with F = 10 mean filler words (tagging._entity_rate,
        # p_trigger = p_decoy = 0): 3 per sentence
        o_per_entity=10 / 3,
        filler_len=(6, 14),
        filler_vocab=60,
        lexicon_per_type=10,
        n_shared=0,
        n_ambiguous=0,
        p_ambiguous=0.0,
        p_trigger=0.0,
        p_decoy=0.0,
        p_ambiguous_filler=0.0,
        label_noise=0.0,
    )
    return replace(base, **overrides)


def polarity_label(tags: np.ndarray) -> int:
    """Class of one sentence from its tags: clip(#positive - #negative, -2, 2) + 2."""
    tags = np.asarray(tags)
    net = int((tags == POS_B).sum()) - int((tags == NEG_B).sum())
    return int(np.clip(net, -2, 2)) + 2


def make_sentiment(cfg: TaggingConfig, seed: int) -> SentimentData:
    """The task for ``seed`` (world, sentences and labels all from the shared generator)."""
    if cfg.n_types != 2 or cfg.max_span != 1:
        raise ValueError(
            f"the sentiment task needs n_types=2 and max_span=1, got {cfg.n_types}, {cfg.max_span}"
        )
    if cfg.filler_vocab < len(CLASS_NAMES) + 1:
        raise ValueError(f"filler_vocab must hold the prompt and {len(CLASS_NAMES)} label words")
    data = make_tagging(cfg, seed)
    labels = {
        name: np.array([polarity_label(t) for t in getattr(data, name).tags], dtype=np.int64)
        for name in ("train", "val", "test")
    }
    # filler ids are 1..filler_vocab (tagging._Vocab); the first six serve as prompt and label words
    return SentimentData(data, labels, prompt_id=1, verbalizers=tuple(range(2, 2 + len(CLASS_NAMES))))
