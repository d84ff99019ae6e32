"""A procedural token-tagging (NER-like) task with a controllable O:entity imbalance, for experiments on
losses for imbalanced sequence labelling. No downloads: everything comes from a config and a seed.

A sentence is filler words with entity spans (BIO tags, ``n_types`` entity types) inserted into it.
What makes a span an entity, and of which type, is learnable from two cues:

* lexicon cue: each type owns a set of *lexicon* words that are entity tokens wherever they appear;
  a few *shared* lexicon words belong to two types, and only the context says which;
* context cue: an entity is often preceded by a *trigger* word of its type (``p_trigger``); spans
  made of *ambiguous* words (which also occur as plain O filler elsewhere) always have a trigger,
  which is the only way to tell them from filler.

and three things keep span-F1 below its ceiling:

* decoy triggers: a trigger word before ordinary filler (``p_decoy`` per filler token), so a trigger
  alone does not make an entity;
* a shared lexicon span without a trigger gets a random one of its two types (irreducible);
* label noise (``label_noise``): that fraction of gold spans is corrupted, half dropped to O and half
  given another type, in every split (like annotation noise in a real test set).

The imbalance knob ``o_per_entity`` is the expected ratio (#O tokens) : (#entity tokens), counting
filler and trigger tokens as O. The number of entities per sentence is Poisson with the rate that
makes the expected ratio equal the knob: about 5 is CoNLL03-like, 50 is like the MRC
start/end tagging of the dice-loss paper (Li et al. 2020, Table 1). ``o_entity_ratio`` measures it.

Token ids: 0 is padding, then filler, ambiguous, lexicon (per type), shared lexicon, triggers (per
type); ``TaggingData.vocab_size`` counts them all. Tags: ``tag_names[0] == "O"``, then
``B-<type>``, ``I-<type>`` per type (``TYPE_NAMES``), in seqeval's format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TYPE_NAMES = ("PER", "LOC", "ORG", "MISC", "DATE", "NUM")
PAD = 0


@dataclass(frozen=True)
class TaggingConfig:
    """The task. Defaults: a CoNLL-like 1:5 setting, 3 entity types."""

    n_train: int = 2000  # sentences per split
    n_val: int = 500
    n_test: int = 1000
    n_types: int = 3  # entity types (at most len(TYPE_NAMES))
    o_per_entity: float = 5.0  # expected #O tokens : #entity tokens
    filler_len: tuple[int, int] = (8, 24)  # filler (O) tokens per sentence, uniform in [lo, hi]
    max_span: int = 3  # entity span length uniform in 1..max_span
    filler_vocab: int = 400  # plain O words
    n_ambiguous: int = 40  # words that are O as filler and entity tokens after a trigger
    lexicon_per_type: int = 40  # words that are always entity tokens of their type
    n_shared: int = 12  # lexicon words of two types (the trigger decides the type)
    triggers_per_type: int = 3
    p_trigger: float = 0.7  # a lexicon span is preceded by a trigger of its type
    p_ambiguous: float = 0.3  # a span is made of ambiguous words (then it always has a trigger)
    p_shared: float = 0.15  # a lexicon span token is drawn from the shared words
    p_ambiguous_filler: float = 0.1  # a filler token is an ambiguous word
    p_decoy: float = 0.03  # per filler token: a trigger word is inserted before it
    label_noise: float = 0.05  # fraction of gold spans corrupted (half dropped, half retyped)


@dataclass
class TaggingSplit:
    """Sentences as int64 arrays of token ids and tag ids (same lengths)."""

    tokens: list[np.ndarray]
    tags: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class TaggingData:
    train: TaggingSplit
    val: TaggingSplit
    test: TaggingSplit
    tag_names: list[str]
    vocab_size: int
    config: TaggingConfig = field(repr=False)

    @property
    def num_tags(self) -> int:
        return len(self.tag_names)

    def tag_strings(self, tags: np.ndarray | list[int]) -> list[str]:
        """Tag ids -> BIO strings (seqeval's input)."""
        return [self.tag_names[int(t)] for t in tags]


class _Vocab:
    """Id ranges of the word classes."""

    def __init__(self, cfg: TaggingConfig, rng: np.random.Generator):
        nxt = 1  # 0 is padding
        self.filler = np.arange(nxt, nxt + cfg.filler_vocab)
        nxt += cfg.filler_vocab
        self.ambiguous = np.arange(nxt, nxt + cfg.n_ambiguous)
        nxt += cfg.n_ambiguous
        self.lexicon = []
        for _ in range(cfg.n_types):
            self.lexicon.append(np.arange(nxt, nxt + cfg.lexicon_per_type))
            nxt += cfg.lexicon_per_type
        # each shared word belongs to a fixed pair of types (drawn once per seed)
        self.shared = np.arange(nxt, nxt + cfg.n_shared)
        nxt += cfg.n_shared
        # np.array, not np.stack: n_shared = 0 gives an empty (0, 2) table instead of an error
        self.shared_types = np.array(
            [rng.choice(cfg.n_types, size=2, replace=False) for _ in range(cfg.n_shared)], dtype=np.int64
        ).reshape(cfg.n_shared, 2)
        self.triggers = []
        for _ in range(cfg.n_types):
            self.triggers.append(np.arange(nxt, nxt + cfg.triggers_per_type))
            nxt += cfg.triggers_per_type
        self.size = nxt


def _validate(cfg: TaggingConfig) -> None:
    if not 1 <= cfg.n_types <= len(TYPE_NAMES):
        raise ValueError(f"n_types must be in 1..{len(TYPE_NAMES)}, got {cfg.n_types}")
    if cfg.n_shared and cfg.n_types < 2:
        raise ValueError("shared lexicon words need n_types >= 2 (set n_shared=0)")
    lo, hi = cfg.filler_len
    if not 1 <= lo <= hi:
        raise ValueError(f"filler_len must be (lo, hi) with 1 <= lo <= hi, got {cfg.filler_len}")
    if cfg.max_span < 1 or cfg.filler_vocab < 1 or cfg.lexicon_per_type < 1 or cfg.triggers_per_type < 1:
        raise ValueError("max_span, filler_vocab, lexicon_per_type and triggers_per_type must be >= 1")
    if cfg.p_ambiguous > 0 and cfg.n_ambiguous < 1:
        raise ValueError("p_ambiguous > 0 needs n_ambiguous >= 1")
    mean_span = (1 + cfg.max_span) / 2
    # expected O tokens per entity: r * mean_span; the trigger (expected p_trig) must fit in it
    if cfg.o_per_entity * mean_span <= 1.0:
        raise ValueError(f"o_per_entity={cfg.o_per_entity} is too small for spans of mean length {mean_span}")
    for name in ("p_trigger", "p_ambiguous", "p_shared", "p_ambiguous_filler", "p_decoy", "label_noise"):
        v = getattr(cfg, name)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v}")


def _entity_rate(cfg: TaggingConfig) -> float:
    """Poisson rate of entities per sentence so that E[#O] / E[#entity tokens] = o_per_entity.

    Per sentence E[#O] = F + lam * p_t + F * p_decoy (filler, triggers, decoys) and
    E[#entity tokens] = lam * m, with F the mean filler length, m the mean span length and
    p_t = p_amb + (1 - p_amb) p_trigger the chance a span has a trigger. Solving for lam:
        lam = F (1 + p_decoy) / (r m - p_t).
    """
    f = sum(cfg.filler_len) / 2
    m = (1 + cfg.max_span) / 2
    p_t = cfg.p_ambiguous + (1 - cfg.p_ambiguous) * cfg.p_trigger
    return f * (1 + cfg.p_decoy) / (cfg.o_per_entity * m - p_t)


def _pick(ids: np.ndarray, rng: np.random.Generator) -> int:
    """A uniform draw from a contiguous id range (faster than rng.choice)."""
    return int(ids[0]) + int(rng.integers(ids.size))


def _sentence(
    cfg: TaggingConfig, v: _Vocab, lam: float, rng: np.random.Generator
) -> tuple[list[int], list[int]]:
    n_fill = int(rng.integers(cfg.filler_len[0], cfg.filler_len[1] + 1))
    n_ent = int(rng.poisson(lam))
    # filler tokens (O), ambiguous words among them
    filler = [
        _pick(v.ambiguous, rng) if (v.ambiguous.size and rng.random() < cfg.p_ambiguous_filler)
        else _pick(v.filler, rng)
        for _ in range(n_fill)
    ]  # fmt: skip
    # entity segments, inserted at gaps between filler tokens (at most one per gap keeps spans apart)
    gaps = np.sort(rng.choice(n_fill + 1, size=min(n_ent, n_fill + 1), replace=False))
    segments: dict[int, tuple[list[int], list[int]]] = {}
    for g in gaps:
        etype = int(rng.integers(cfg.n_types))
        length = int(rng.integers(1, cfg.max_span + 1))
        ambiguous = rng.random() < cfg.p_ambiguous
        words = []
        for _ in range(length):
            if ambiguous:
                words.append(_pick(v.ambiguous, rng))
            elif cfg.n_shared and rng.random() < cfg.p_shared:
                # a shared word of a pair containing etype; fall back to the type's own lexicon
                ok = np.flatnonzero((v.shared_types == etype).any(1))
                words.append(int(v.shared[rng.choice(ok)]) if ok.size else _pick(v.lexicon[etype], rng))
            else:
                words.append(_pick(v.lexicon[etype], rng))
        has_trigger = ambiguous or rng.random() < cfg.p_trigger
        if not has_trigger and v.shared.size and all(v.shared[0] <= w <= v.shared[-1] for w in words):
            # no context and only shared words: the annotator's type is one of the pair, at random
            pair = v.shared_types[int(np.flatnonzero(v.shared == words[0])[0])]
            etype = int(rng.choice(pair))
        tags = [1 + 2 * etype] + [2 + 2 * etype] * (length - 1)
        if rng.random() < cfg.label_noise:
            if cfg.n_types > 1 and rng.random() < 0.5:  # retype
                other = int(rng.choice([t for t in range(cfg.n_types) if t != etype]))
                tags = [1 + 2 * other] + [2 + 2 * other] * (length - 1)
            else:  # dropped by the annotator
                tags = [0] * length
        prefix = [_pick(v.triggers[etype], rng)] if has_trigger else []
        segments[int(g)] = (prefix + words, [0] * len(prefix) + tags)
    tokens: list[int] = []
    tags_out: list[int] = []
    for i in range(n_fill + 1):
        if i in segments:
            tokens += segments[i][0]
            tags_out += segments[i][1]
        if i < n_fill:
            if rng.random() < cfg.p_decoy:  # a trigger before plain filler: not an entity
                tokens.append(_pick(v.triggers[int(rng.integers(cfg.n_types))], rng))
                tags_out.append(0)
            tokens.append(filler[i])
            tags_out.append(0)
    return tokens, tags_out


def _split(cfg: TaggingConfig, v: _Vocab, n: int, rng: np.random.Generator) -> TaggingSplit:
    lam = _entity_rate(cfg)
    toks, tags = [], []
    for _ in range(n):
        a, b = _sentence(cfg, v, lam, rng)
        toks.append(np.asarray(a, dtype=np.int64))
        tags.append(np.asarray(b, dtype=np.int64))
    return TaggingSplit(toks, tags)


def make_tagging(cfg: TaggingConfig, seed: int) -> TaggingData:
    """Train/val/test splits drawn from one world (vocabulary, shared-word types) fixed by ``seed``.
    Each split has its own random stream, so changing ``n_test`` leaves train and val unchanged."""
    _validate(cfg)
    root = np.random.SeedSequence([seed, 0x7A66])
    world, s_train, s_val, s_test = (np.random.default_rng(s) for s in root.spawn(4))
    v = _Vocab(cfg, world)
    names = ["O"] + [f"{p}-{TYPE_NAMES[t]}" for t in range(cfg.n_types) for p in ("B", "I")]
    return TaggingData(
        train=_split(cfg, v, cfg.n_train, s_train),
        val=_split(cfg, v, cfg.n_val, s_val),
        test=_split(cfg, v, cfg.n_test, s_test),
        tag_names=names,
        vocab_size=v.size,
        config=cfg,
    )


def o_entity_ratio(split: TaggingSplit) -> float:
    """Measured #O tokens / #entity tokens of a split (inf when it has no entity token)."""
    tags = np.concatenate(split.tags) if len(split) else np.zeros(0, dtype=np.int64)
    ent = int((tags > 0).sum())
    return float("inf") if ent == 0 else float((tags == 0).sum()) / ent


def pad_batch(seqs: list[np.ndarray], pad_value: int) -> np.ndarray:
    """Right-pad 1-D int arrays to one (B, T) array."""
    width = max((len(s) for s in seqs), default=0)
    out = np.full((len(seqs), width), pad_value, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out
