"""A synthetic translation task whose irreducible loss is known exactly.

The paper trains on WMT-scale English->German; a 2-core CPU cannot. In its place, a seeded "language
pair" with the three ingredients that make translation more than copying (brief: word bijection,
reordering, agreement) and one stochastic ingredient that gives the loss a floor L_inf > 0 that is
known in closed form.

Source ("English-like", SVO). A sentence is

    NP_subj  VERB  NP_obj  [PREP  NP_pp]        NP = DET [ADJ] NOUN

with every noun lemma drawn from a Zipf(``zipf``) popularity law (a few frequent words, a long tail,
as in natural text), verbs likewise, determiners/adjectives/prepositions uniformly; the noun's number
(singular/plural) is a coin flip and shows in the source token (two source forms per lemma), each
adjective slot is filled with probability ``p_adj`` and the prepositional phrase appears with
probability ``p_pp``.

Target ("verb-final, gendered"). A deterministic rewrite plus one random choice per noun:

* reordering: ``NP_subj [PREP NP_pp] NP_obj VERB`` (the PP moves before the object, the verb to the end);
* word bijection: every source lemma maps to its own target pseudo-word(s) (a seeded permutation of
  the target ids; ``pseudo_words`` spells them for display);
* agreement: every noun lemma has a fixed grammatical gender (seeded); the determiner and the
  adjective of an NP take the noun's gender and number, the verb takes the SUBJECT's gender and
  number. The determiner and adjective precede the noun in the target, so the decoder must read the
  noun's gender from the source before it has produced the noun;
* stochastic part (synonym choice): noun lemma l has k_l in {1, ..., max_synonyms} target synonyms
  (k_l seeded), and each occurrence picks one uniformly at random, independently of everything else.

Optional, harder pair (``n_cases`` >= 2; the cpu scale's "hard pair", README "Harder pair"): every
subject and object noun of the target is followed by a CASE MARKER, one of ``n_cases`` target words, set
by a seeded table ``case[verb, role, lemma]`` (role: subject or object) with no structure at all: an
arbitrary collocation, as when a verb governs the case of its arguments. The marker is a deterministic
function of the source (Bayes probability 1), but the table has n_verbs * 2 * n_nouns entries of
log2(n_cases) bits each whose pair frequencies are the product of two Zipf laws, so a model must STORE
it in its layers (an embedding sees one word, not a pair) and the rare pairs are stored last: the loss
above L_inf is expected to fall with the capacity of the encoder and decoder layers, as in
Zipf-memorisation accounts of power-law scaling (Hutter 2021, arXiv 2102.04074). The marker also needs the verb, which stands last in
the target, before the decoder has produced it: a long-range dependency on the source.

The synonym choice is the only randomness of the target given the source, and it influences no later
token (the agreement depends on the lemma, not on the synonym), so the Bayes-optimal model puts
probability 1 on every deterministic token and 1/k_l on each synonym of a noun. Its cross-entropy per
target token (EOS counted, as the models are scored) on any sample is therefore exactly

    L_bayes(sample) = sum over noun occurrences of ln k_l / number of target tokens,

and the population value (the limit for a large sample, by the law of large numbers on the ratio) is

    L_inf = E[#nouns] * E_zipf[ln k_l] / E[#target tokens]
          = (2 + p_pp) * E[ln k] / (2 (2 + p_adj) + 1 + p_pp (1 + 2 + p_adj) + 1)

(two NPs and the verb always, the PP with probability p_pp, one EOS; an NP has 2 + p_adj tokens on
average; with case markers every sentence has 2 more target tokens, deterministic ones, so the
numerator is unchanged and the denominator grows by 2). ``Task.l_inf`` evaluates this formula;
``Task.bayes_loss`` the finite-sample value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

PAD, BOS, EOS = 0, 1, 2
N_SPECIAL = 3
GENDERS, NUMBERS = 2, 2


@dataclass(frozen=True)
class TaskConfig:
    """The lexicon and grammar of the synthetic language pair.

    n_nouns, n_verbs, n_adjs, n_preps, n_dets: lexicon sizes (lemmas).
    max_synonyms: each noun lemma has k_l ~ uniform{1..max_synonyms} target synonyms (1: deterministic).
    zipf: popularity exponent of noun and verb lemmas (rank r drawn with weight r^-zipf).
    p_adj: probability that an NP has an adjective; p_pp: probability of the prepositional phrase;
    p_plural: probability that a noun is plural.
    seed: draws the lexicon (genders, synonym counts, the target permutation); the same seed gives the
        same language pair on every machine. Sentences are drawn by ``sample(n, seed)`` separately.
    n_cases: 0 (the default, the original pair) or >= 2: the subject and object nouns of the target are
        each followed by one of ``n_cases`` case markers from the seeded table case[verb, role, lemma]
        (module docstring). The table is drawn from its own generator (``seed``, stream 1), so the rest
        of the lexicon is the same with and without it.
    """

    n_nouns: int = 48
    n_verbs: int = 24
    n_adjs: int = 16
    n_preps: int = 6
    n_dets: int = 3
    max_synonyms: int = 3
    zipf: float = 1.0
    p_adj: float = 0.5
    p_pp: float = 0.5
    p_plural: float = 0.5
    seed: int = 0
    n_cases: int = 0

    def __post_init__(self) -> None:
        if self.n_cases == 1 or self.n_cases < 0:
            raise ValueError(f"n_cases must be 0 (no case markers) or >= 2, got {self.n_cases}")
        for name in ("n_nouns", "n_verbs", "n_adjs", "n_preps", "n_dets", "max_synonyms"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("p_adj", "p_pp", "p_plural"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.zipf >= 0:
            raise ValueError(f"zipf must be >= 0, got {self.zipf}")


@dataclass(frozen=True)
class Batch:
    """src, tgt: (n, length) int64 arrays, PAD-padded on the right, each row ending in EOS;
    n_syn: (n, 3) synonym counts k_l of the subject, object and PP nouns (0 where the PP is absent)."""

    src: np.ndarray
    tgt: np.ndarray
    n_syn: np.ndarray


def _compact(tok: np.ndarray) -> np.ndarray:
    """Drop the absent slots (-1) of every row, keep the order of the others, pad with PAD."""
    order = np.argsort(tok < 0, axis=1, kind="stable")
    out = np.take_along_axis(tok, order, axis=1)
    width = int((out >= 0).sum(axis=1).max())
    out = out[:, :width]
    return np.where(out < 0, PAD, out).astype(np.int64)


class Task:
    """The language pair of one ``TaskConfig``: vocabularies, sampling, the exact loss floor."""

    def __init__(self, cfg: TaskConfig | None = None):
        self.cfg = cfg or TaskConfig()
        c = self.cfg
        rng = np.random.default_rng(c.seed)
        self.gender = rng.integers(0, GENDERS, c.n_nouns)  # per noun lemma
        self.k = rng.integers(1, c.max_synonyms + 1, c.n_nouns)  # synonyms per noun lemma
        self.noun_p = self._zipf(c.n_nouns)
        self.verb_p = self._zipf(c.n_verbs)

        # source ids: specials | dets | adjs | nouns (lemma, number) | verbs | preps
        o = N_SPECIAL
        self.s_det = o + np.arange(c.n_dets)
        o += c.n_dets
        self.s_adj = o + np.arange(c.n_adjs)
        o += c.n_adjs
        self.s_noun = o + np.arange(c.n_nouns * NUMBERS).reshape(c.n_nouns, NUMBERS)
        o += c.n_nouns * NUMBERS
        self.s_verb = o + np.arange(c.n_verbs)
        o += c.n_verbs
        self.s_prep = o + np.arange(c.n_preps)
        self.src_vocab = o + c.n_preps

        # target ids before the bijection: dets (det, gender, number) | adjs (adj, gender, number) |
        # nouns (lemma, synonym slot, number; slots >= k_l unused) | verbs (verb, gender, number) | preps
        o = N_SPECIAL
        self._t_det = o + np.arange(c.n_dets * 4).reshape(c.n_dets, GENDERS, NUMBERS)
        o += c.n_dets * 4
        self._t_adj = o + np.arange(c.n_adjs * 4).reshape(c.n_adjs, GENDERS, NUMBERS)
        o += c.n_adjs * 4
        self._t_noun = o + np.arange(c.n_nouns * c.max_synonyms * NUMBERS).reshape(
            c.n_nouns, c.max_synonyms, NUMBERS
        )
        o += c.n_nouns * c.max_synonyms * NUMBERS
        self._t_verb = o + np.arange(c.n_verbs * 4).reshape(c.n_verbs, GENDERS, NUMBERS)
        o += c.n_verbs * 4
        self._t_prep = o + np.arange(c.n_preps)
        o += c.n_preps
        # case markers (n_cases >= 2 only) come last, so that without them every id above is unchanged
        self._t_case = o + np.arange(c.n_cases)
        o += c.n_cases
        self.tgt_vocab = o
        # the word bijection: a seeded permutation of the non-special target ids (without case markers
        # this is the original pair's permutation, drawn from the same generator state)
        self.perm = np.concatenate([np.arange(N_SPECIAL), N_SPECIAL + rng.permutation(o - N_SPECIAL)])
        # case[verb, role, lemma] (role 0: subject, 1: object): an arbitrary, uniform table from its own
        # stream, so genders and synonym counts do not change when it is switched on
        crng = np.random.default_rng([c.seed, 1])
        self.case = crng.integers(0, max(c.n_cases, 1), (c.n_verbs, 2, c.n_nouns))

    def _zipf(self, n: int) -> np.ndarray:
        w = np.arange(1, n + 1, dtype=np.float64) ** -self.cfg.zipf
        return w / w.sum()

    # ---- the exact loss floor -------------------------------------------------------------------
    @cached_property
    def l_inf(self) -> float:
        """Population Bayes cross-entropy per target token (nats), the closed form of the docstring."""
        c = self.cfg
        e_lnk = float((self.noun_p * np.log(self.k)).sum())
        e_nouns = 2 + c.p_pp
        e_np = 2 + c.p_adj
        e_tokens = 2 * e_np + 1 + c.p_pp * (1 + e_np) + 1 + (2 if c.n_cases else 0)
        return e_nouns * e_lnk / e_tokens

    @staticmethod
    def bayes_loss(batch: Batch) -> float:
        """Bayes-optimal cross-entropy per target token on this sample: sum ln k_l / #target tokens."""
        ks = batch.n_syn[batch.n_syn > 0].astype(np.float64)
        return float(np.log(ks).sum() / (batch.tgt != PAD).sum())

    # ---- sampling -------------------------------------------------------------------------------
    def sample(self, n: int, seed: int) -> Batch:
        """n independent sentence pairs, drawn from ``seed`` (vectorised over the sentences)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        c = self.cfg
        rng = np.random.default_rng(seed)
        # three NPs (subject, object, PP object), columns 0, 1, 2
        lemma = rng.choice(c.n_nouns, size=(n, 3), p=self.noun_p)
        number = (rng.random((n, 3)) < c.p_plural).astype(np.int64)
        det = rng.integers(0, c.n_dets, (n, 3))
        has_adj = rng.random((n, 3)) < c.p_adj
        adj = rng.integers(0, c.n_adjs, (n, 3))
        verb = rng.choice(c.n_verbs, size=n, p=self.verb_p)
        has_pp = rng.random(n) < c.p_pp
        prep = rng.integers(0, c.n_preps, n)
        k = self.k[lemma]
        syn = np.floor(rng.random((n, 3)) * k).astype(np.int64)  # uniform on {0..k_l-1}
        gender = self.gender[lemma]

        present = np.ones((n, 3), dtype=bool)
        present[:, 2] = has_pp
        adj_on = has_adj & present

        def col(values, mask):
            return np.where(mask, values, -1)

        # source, SVO: det adj noun | verb | det adj noun | prep det adj noun | EOS
        s_np = [
            (col(self.s_det[det[:, j]], present[:, j]), col(self.s_adj[adj[:, j]], adj_on[:, j]),
             col(self.s_noun[lemma[:, j], number[:, j]], present[:, j]))
            for j in range(3)
        ]  # fmt: skip
        src = np.stack(
            [*s_np[0], self.s_verb[verb], *s_np[1], col(self.s_prep[prep], has_pp), *s_np[2],
             np.full(n, EOS)], axis=1,
        )  # fmt: skip

        # target, verb-final: NP_subj | prep NP_pp | NP_obj | verb(subject gender, number) | EOS
        t_np = [
            (col(self._t_det[det[:, j], gender[:, j], number[:, j]], present[:, j]),
             col(self._t_adj[adj[:, j], gender[:, j], number[:, j]], adj_on[:, j]),
             col(self._t_noun[lemma[:, j], syn[:, j], number[:, j]], present[:, j]))
            for j in range(3)
        ]  # fmt: skip
        t_verb = self._t_verb[verb, gender[:, 0], number[:, 0]]
        if c.n_cases:  # NP_subj MARK [prep NP_pp] NP_obj MARK verb EOS; the markers need the verb
            mark = [self._t_case[self.case[verb, r, lemma[:, r]]] for r in (0, 1)]
            tgt = np.stack(
                [*t_np[0], mark[0], col(self._t_prep[prep], has_pp), *t_np[2], *t_np[1], mark[1], t_verb,
                 np.full(n, EOS)], axis=1,
            )  # fmt: skip
        else:
            tgt = np.stack(
                [*t_np[0], col(self._t_prep[prep], has_pp), *t_np[2], *t_np[1], t_verb, np.full(n, EOS)],
                axis=1,
            )
        tgt = np.where(tgt >= 0, self.perm[np.maximum(tgt, 0)], -1)
        return Batch(src=_compact(src), tgt=_compact(tgt), n_syn=np.where(present, k, 0).astype(np.int64))

    # ---- display --------------------------------------------------------------------------------
    def pseudo_words(self) -> tuple[list[str], list[str]]:
        """Printable source and target vocabularies (for examples in the README; not used in training)."""
        c = self.cfg
        rng = np.random.default_rng(c.seed + 1)
        syl = [a + b for a in "bdfgklmnprstvz" for b in "aeiou"]

        def word(parts: int) -> str:
            return "".join(rng.choice(syl, parts))

        src = ["<pad>", "<bos>", "<eos>"] + [""] * (self.src_vocab - N_SPECIAL)
        tgt = ["<pad>", "<bos>", "<eos>"] + [""] * (self.tgt_vocab - N_SPECIAL)
        for i in range(c.n_dets):
            src[self.s_det[i]] = ["the", "a", "some", "this", "that"][i % 5] + ("" if i < 5 else str(i))
        for i, v in enumerate(self.s_adj):
            src[v] = f"adj{i}"
        for i in range(c.n_nouns):
            src[self.s_noun[i, 0]], src[self.s_noun[i, 1]] = f"noun{i}", f"noun{i}s"
        for i, v in enumerate(self.s_verb):
            src[v] = f"verb{i}"
        for i, v in enumerate(self.s_prep):
            src[v] = f"prep{i}"
        suffix = {(0, 0): "a", (0, 1): "an", (1, 0): "o", (1, 1): "on"}  # (gender, number)
        for table, parts in ((self._t_det, 1), (self._t_adj, 2), (self._t_verb, 2)):
            for i in range(table.shape[0]):
                stem = word(parts)
                for (g, nb), s in suffix.items():
                    tgt[self.perm[table[i, g, nb]]] = stem + s
        for i in range(c.n_nouns):
            for j in range(c.max_synonyms):
                stem = word(2)
                tgt[self.perm[self._t_noun[i, j, 0]]] = stem
                tgt[self.perm[self._t_noun[i, j, 1]]] = stem + "i"
        for v in self._t_prep:
            tgt[self.perm[v]] = word(1)
        for i, v in enumerate(self._t_case):
            tgt[self.perm[v]] = f"-k{i}"
        return src, tgt

    def describe(self) -> dict:
        return {
            "src_vocab": int(self.src_vocab),
            "tgt_vocab": int(self.tgt_vocab),
            "l_inf": self.l_inf,
            "mean_synonyms": float((self.noun_p * self.k).sum()),
            "entropy_per_sentence": (2 + self.cfg.p_pp) * float((self.noun_p * np.log(self.k)).sum()),
            "tokens_per_sentence": 2 * (2 + self.cfg.p_adj)
            + 2
            + self.cfg.p_pp * (3 + self.cfg.p_adj)
            + (2 if self.cfg.n_cases else 0),
        }


def show(task: Task, batch: Batch, i: int = 0) -> tuple[str, str]:
    """Sentence i of a batch as text (source, target)."""
    sv, tv = task.pseudo_words()
    s = " ".join(sv[t] for t in batch.src[i] if t != PAD)
    t = " ".join(tv[t] for t in batch.tgt[i] if t != PAD)
    return s, t


def entropy_check(task: Task, n: int = 200_000, seed: int = 12345) -> tuple[float, float]:
    """(closed-form L_inf, Monte-Carlo Bayes loss on n sentences): they agree to O(1/sqrt(n))."""
    return task.l_inf, task.bayes_loss(task.sample(n, seed))


__all__ = ["BOS", "EOS", "PAD", "Batch", "Task", "TaskConfig", "entropy_check", "show"]
