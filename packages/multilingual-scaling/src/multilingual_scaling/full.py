"""``--scale full``: the same three experiments on real monolingual text grouped into language families.

The paper trains decoder LMs (85M -> 1.2B) on 23 languages in 5 families. Here the user supplies
monolingual text on disk (nothing is downloaded, ``xentlab.repro.local_data``) and a family mapping in
the config; the study per seed is ``multilingual_scaling.experiment.run_seed``'s, with its mixtures,
fits and claims unchanged, on real data:

Input (config key ``data_root`` or ``$MULTILINGUAL_SCALING_DATA``): a directory with one file per
language code, CC-100 style (one paragraph per line, documents separated by blank lines; mC4 text
exported the same way works too)::

    fr.txt  es.txt  it.txt  pt.txt  ro.txt  en.txt  de.txt  nl.txt ...   (or <code>.txt.gz / <code>.txt.xz)

``families`` (config) maps a family name to its language codes, e.g. ``[["Romance", ["fr", "es", ...]],
["Germanic", [...]], ["Slavic", [...]]]`` (a {name: codes} dict works too); edit it to regroup. The mixture designs (``GAMMA_MIXES``,
``INDEP_MIXES``, ``CONTROL_MIXES``) are for exactly 3 families, labelled A, B, C in the mapping's order
(the metric names use the labels; the real names are an artifact).

Data: the first ``max_bytes_per_language`` bytes of each file are read; the last
``test_bytes_per_language`` of them (at a line boundary) are that language's test text, the rest its
training text. Tokenizer ``tokenizer``: "bytes" (UTF-8 bytes, 256 symbols) or "bpe" (a byte-level BPE
from the ``tokenizers`` library with ``vocab_size`` entries, trained on the first ``tokenizer_chars``
characters of every language's TRAINING text: a balanced sample), cached with the encoded text under
``xentlab.data.cache_dir``, keyed by the files' identity (path, size, mtime), the settings and the code that
reads, tokenizes and encodes them (``corpus_code()``; xentlab.data.cache, "The key rule").

Training sequences are windows of ``seq_len`` tokens at random offsets of one language's training text;
family i supplies exactly round(p_i x n) of the n sequences of a run (largest remainder, as
``families.mixture_stream``), its languages equally often. The test loss of a family is the mean
next-token CE (nats/token, positions >= 1) on ``test_seqs`` fixed consecutive windows of its languages'
test texts, languages equally often. Model: ``xentlab.models.small_decoder`` (as at cpu scale), AdamW
with ``train.lr_at``, bf16 autocast on CUDA.

Control world (the real-data analogue of the cpu scale's A'): family A's languages are split in two
halves, A (first half) and A' (second half), labelled as separate families next to B (and C at ratio 0,
so the model has the main world's shape); sibling languages share structure, so the B/A' split should
move A's loss.

Normaliser: real text has no known entropy rate, so each family's loss is divided by K_i, the larger
small size's fitted loss at p_i = 1 (each family's loss relative to its own reference, as the paper's
normalised objective; README). Then p* = argmin sum_i w_i p_i^-gamma_i, and the held-out model is scored
by sum_i w_i L_i / K_i.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import lzma
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from multilingual_scaling.experiment import (
    GAMMA_FLOOR,
    GAMMA_MIXES,
    INDEP_MIXES,
    gamma_fits,
    indep_train_config,
    independence_study,
    memoised,
    weighted_normalised_loss,
)
from multilingual_scaling.families import check_ratios
from multilingual_scaling.law import mixture_objective, optimal_ratios
from multilingual_scaling.train import TrainConfig, family_loss, lr_at
from xentlab.data.cache import (
    atomic_write_bytes,
    cache_dir,
    cached_arrays,
    code_key,
    file_lock,
    source_digest,
)
from xentlab.models.small_decoder import LMShape, seeded_decoder
from xentlab.repro.local_data import MissingLocalData, local_path

ENV = "MULTILINGUAL_SCALING_DATA"
LABELS = ("A", "B", "C")
SUFFIXES = (".txt", ".txt.gz", ".txt.xz")
SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the corpus cache key (xentlab.data.cache, "The key rule")"""
NEEDS = (
    "a directory with one UTF-8 text file per language code, <code>.txt (or .txt.gz / .txt.xz), CC-100 "
    "style, for every code of the config's 'families' mapping; see packages/multilingual-scaling/README.md"
)


# ---- the corpus --------------------------------------------------------------------------------------
def family_table(cfg: dict) -> list[tuple[str, str, list[str]]]:
    """[(label, family name, language codes)] for the 3 families of ``cfg["families"]``: a list of
    [name, codes] pairs (reproduce.py) or a {name: codes} mapping, in label order A, B, C."""
    fams = cfg["families"]
    fams = dict(fams.items() if isinstance(fams, dict) else fams)
    if len(fams) != 3:
        raise ValueError(f"the mixture designs are for exactly 3 families, got {len(fams)}: {list(fams)}")
    out = []
    for label, (name, langs) in zip(LABELS, fams.items()):
        if not langs or len(set(langs)) != len(langs):
            raise ValueError(f"family {name!r} needs distinct language codes, got {langs}")
        out.append((label, name, list(langs)))
    codes = [c for _, _, langs in out for c in langs]
    if len(set(codes)) != len(codes):
        raise ValueError(f"a language is in two families: {codes}")
    return out


def language_files(cfg: dict, codes: list[str]) -> dict[str, Path]:
    """{code: file}; a missing variable or file names the variable and the layout."""
    root = local_path(cfg, "data_root", ENV, needs=NEEDS)
    files, missing = {}, []
    for c in codes:
        hit = [root / f"{c}{s}" for s in SUFFIXES if (root / f"{c}{s}").is_file()]
        if hit:
            files[c] = hit[0]
        else:
            missing.append(f"{c}.txt")
    if missing:
        raise MissingLocalData(f"{ENV}={root} lacks {', '.join(missing)}: it must hold {NEEDS}")
    return files


def _open(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    if path.name.endswith(".xz"):
        return lzma.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def read_language(path: Path, max_bytes: int, test_bytes: int) -> tuple[list[str], list[str]]:
    """(train lines, test lines): the first max_bytes bytes of text (whole lines), the last test_bytes of
    them held out. Lines keep their newline (the models see paragraph boundaries)."""
    lines, size = [], 0
    with _open(path) as f:
        for line in f:
            n = len(line.encode("utf-8"))
            if size + n > max_bytes and lines:
                break
            lines.append(line)
            size += n
    cut, tail = len(lines), 0
    while cut > 0 and tail < test_bytes:
        cut -= 1
        tail += len(lines[cut].encode("utf-8"))
    if cut == 0 or tail == 0:
        raise ValueError(
            f"{path}: {size} bytes read, too little for {test_bytes} test bytes plus training text"
        )
    return lines[:cut], lines[cut:]


@functools.lru_cache(maxsize=1)
def corpus_code() -> str:
    """The code part of the corpus cache key: this module (``read_language``, ``train_bpe``, ``Encoder``: the
    whole of reading, the held-out cut, the BPE and the encoding) and the libraries whose numbers end up in
    the cached ids (``tokenizers``' BPE trainer and encoder, numpy's integer arrays). Any edit of this file
    gives a new key, so a corpus written by older code is never read (it replaces a hand-bumped FORMAT)."""
    return code_key(SOURCE_DIGEST, libraries=("numpy", "tokenizers"))


def _identity(files: dict[str, Path], *parts) -> str:
    h = hashlib.sha256(f"multilingual-full|{corpus_code()}|{parts}".encode())
    for c in sorted(files):
        st = files[c].stat()
        h.update(f"{c}|{files[c].resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def corpus_key(cfg: dict, files: dict[str, Path]) -> str:
    """The key of the cached tokenizer and encoded corpus: the files' identity (path, size, mtime), the
    settings that shape them, and ``corpus_code()``."""
    settings = (cfg["tokenizer"], cfg.get("vocab_size"), cfg.get("tokenizer_chars"),
                cfg["max_bytes_per_language"], cfg["test_bytes_per_language"])  # fmt: skip
    return _identity(files, *settings)


def train_bpe(texts: list[str], vocab_size: int):
    """A byte-level BPE (``tokenizers``): every string round-trips, no unknown token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < 257:
        raise ValueError(f"vocab_size must be >= 257 (bytes + <pad>), got {vocab_size}")
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=["<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )  # fmt: skip
    tk.train_from_iterator(texts, trainer=trainer)
    return tk


class Encoder:
    """Text -> token ids: UTF-8 bytes (vocab 256) or a byte-level BPE (``tokenizers``)."""

    def __init__(self, tk=None):
        self.tk = tk

    @property
    def vocab_size(self) -> int:
        return 256 if self.tk is None else self.tk.get_vocab_size()

    def encode(self, lines: list[str], chunk: int = 20_000) -> np.ndarray:
        if self.tk is None:
            return np.frombuffer("".join(lines).encode("utf-8"), dtype=np.uint8).copy()
        parts = [
            np.fromiter(
                (i for e in self.tk.encode_batch(lines[k : k + chunk]) for i in e.ids), dtype=np.int32
            )
            for k in range(0, len(lines), chunk)
        ]
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        return ids.astype(np.uint16) if self.vocab_size <= 65_535 else ids


def load_corpus(cfg: dict, files: dict[str, Path]) -> tuple[Encoder, dict[str, np.ndarray]]:
    """The tokenizer and {"<code>_train": ids, "<code>_test": ids} for every language (built once,
    cached under a file lock; the BPE sees training text only)."""
    from tokenizers import Tokenizer

    if cfg["tokenizer"] not in ("bytes", "bpe"):
        raise ValueError(f"tokenizer must be 'bytes' or 'bpe', got {cfg['tokenizer']!r}")
    key = corpus_key(cfg, files)
    tok_path = cache_dir("multilingual-scaling", "tokenizers") / f"bpe-{key}.json"

    def texts() -> Iterator[tuple[str, list[str], list[str]]]:
        for c, p in files.items():
            yield c, *read_language(p, cfg["max_bytes_per_language"], cfg["test_bytes_per_language"])

    with file_lock(cache_dir("multilingual-scaling") / f"corpus-{key}.lock"):
        if cfg["tokenizer"] == "bpe" and not tok_path.exists():
            sample = []
            for _, train, _ in texts():  # a balanced sample: the same number of characters per language
                text = "".join(train)[: cfg["tokenizer_chars"]]
                sample.extend(text[i : i + 10_000] for i in range(0, len(text), 10_000))
            atomic_write_bytes(tok_path, train_bpe(sample, cfg["vocab_size"]).to_str().encode("utf-8"))
        enc = Encoder(Tokenizer.from_file(str(tok_path)) if cfg["tokenizer"] == "bpe" else None)

        def build() -> dict[str, np.ndarray]:
            return {f"{c}_{part}": enc.encode(lines) for c, train, test in texts()
                    for part, lines in (("train", train), ("test", test))}  # fmt: skip

        arrays = cached_arrays(f"multilingual-scaling-corpus-{key}", build)
    return enc, arrays


# ---- sequences ---------------------------------------------------------------------------------------
def test_windows(arrays: dict[str, np.ndarray], langs: list[str], n_seqs: int, seq_len: int) -> torch.Tensor:
    """(n_seqs, seq_len) consecutive windows from the start of each language's test text, the languages
    equally often (the first ones take the remainder); fixed for every run, model and seed."""
    per = [n_seqs // len(langs) + (j < n_seqs % len(langs)) for j in range(len(langs))]
    rows = []
    for c, k in zip(langs, per):
        ids = arrays[f"{c}_test"]
        if len(ids) < k * seq_len:
            raise ValueError(
                f"language {c!r}: its test text has {len(ids)} tokens, {k} windows of {seq_len} need "
                f"{k * seq_len}; raise test_bytes_per_language or lower test_seqs"
            )
        rows.append(ids[: k * seq_len].reshape(k, seq_len))
    return torch.from_numpy(np.concatenate(rows).astype(np.int64))


def mixture_windows(arrays, families, ratios, n_seqs: int, seq_len: int, seed: int) -> np.ndarray:
    """(n_seqs, 2) = (language index into the flat language list, start offset) of a run's training
    sequences: family i has exactly round(p_i n_seqs) (largest remainder), a uniform language of the
    family and a uniform offset; shuffled. Depends on (ratios, seed) only."""
    p = check_ratios(ratios, len(families))
    raw = p * n_seqs
    counts = np.floor(raw).astype(int)
    counts[np.argsort(-(raw - counts))[: n_seqs - counts.sum()]] += 1
    flat = [c for langs in families for c in langs]
    parts = []
    for i, (langs, k) in enumerate(zip(families, counts)):
        if k == 0:
            continue
        rng = np.random.default_rng([seed, 13 * i])
        lang = rng.integers(0, len(langs), k)
        room = np.array([len(arrays[f"{c}_train"]) - seq_len for c in langs])
        if np.any(room < 1):
            short = [c for c, r in zip(langs, room) if r < 1]
            raise ValueError(f"languages {short}: training text shorter than seq_len={seq_len} tokens")
        off = (rng.random(k) * room[lang]).astype(np.int64)
        parts.append(np.stack([np.array([flat.index(langs[j]) for j in range(len(langs))])[lang], off], 1))
    plan = np.concatenate(parts)
    return plan[np.random.default_rng([seed, 2]).permutation(len(plan))]


def train_text_mixture(arrays, families, ratios, tc: TrainConfig, seed: int, ctx, vocab: int,
                       dtype: str, stream_seed: int | None = None) -> dict:  # fmt: skip
    """``train.train_mixture`` on real text: one model, trained with sampling ratios ``ratios`` over
    ``families`` (lists of language codes); returns N and every family's test loss."""
    device = torch.device(ctx.device)
    shape = LMShape(
        vocab_size=vocab, hidden=tc.hidden, layers=tc.layers, heads=tc.heads, max_positions=tc.seq_len
    )
    model = seeded_decoder(shape, seed).to(device)
    n_steps = max(1, tc.tokens // (tc.batch * tc.seq_len))
    plan = mixture_windows(arrays, families, ratios, n_steps * tc.batch, tc.seq_len,
                           seed if stream_seed is None else stream_seed)  # fmt: skip
    flat = [arrays[f"{c}_train"] for langs in families for c in langs]
    span = np.arange(tc.seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, betas=(0.9, tc.beta2), weight_decay=0.0)
    amp = device.type == "cuda" and dtype != "float32"
    for step in range(n_steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, n_steps, tc)
        rows = plan[step * tc.batch : (step + 1) * tc.batch]
        x = np.stack([flat[li][o + span] for li, o in rows]).astype(np.int64)
        x = torch.from_numpy(x).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=getattr(torch, dtype), enabled=amp):
            logits = model(x)
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, vocab), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % max(1, n_steps // 10) == 0:
            ctx.log(step=step + 1, train_loss=loss.item(), n_nonemb=model.non_embedding_params())
    losses = []
    for langs in families:
        test = test_windows(arrays, langs, tc.test_seqs, tc.seq_len).to(device)
        with torch.autocast(device.type, dtype=getattr(torch, dtype), enabled=amp):
            losses.append(family_loss(model, test, order=1))  # every position with a context
    if not all(np.isfinite(losses)):
        raise FloatingPointError(f"non-finite test loss {losses} (ratios {list(ratios)})")
    return {
        "n_nonemb": model.non_embedding_params(),
        "losses": losses,
        "tokens": n_steps * tc.batch * tc.seq_len,
    }


# ---- the study of one seed ---------------------------------------------------------------------------
def run_full(cfg: dict, seed: int, ctx) -> dict:
    """``experiment.run_seed`` on real text (see the module docstring); the same metric names."""
    table = family_table(cfg)
    main = [langs for _, _, langs in table]
    if len(main[0]) < 2:
        raise ValueError(f"the control needs >= 2 languages in family {table[0][1]!r} (split into A and A')")
    half = (len(main[0]) + 1) // 2
    control = [main[0][:half], main[1], main[0][half:], main[2]]  # A, B, A', C at ratio 0
    files = language_files(cfg, [c for langs in main for c in langs])
    enc, arrays = load_corpus(cfg, files)
    small = [TrainConfig(**c) for c in cfg["small"]]
    large = TrainConfig(**cfg["large"])
    names = list(LABELS)
    w = np.asarray(cfg["weights"], dtype=np.float64)
    dtype = cfg.get("dtype", "float32")
    out: dict = {
        "vocab_size": enc.vocab_size,
        **{
            f"train_tokens_{n}": int(sum(len(arrays[f"{c}_train"]) for c in langs))
            for n, langs in zip(names, main)
        },
        "family_names": {n: name for n, (_, name, _) in zip(names, table)},  # artifact
        "languages": {n: langs for n, langs in zip(names, main)},  # artifact
        "control_languages": {"A": control[0], "Aprime": control[2]},  # artifact
    }

    worlds = {"main": main, "control": control}
    train = memoised(lambda wk, p, tc, s: train_text_mixture(arrays, worlds[wk], p, tc, s, ctx, enc.vocab_size,
                                                             dtype))  # fmt: skip

    def record(tag: str, res: dict, labels) -> None:
        for n, loss in zip(labels, res["losses"]):
            out[f"{tag}_L_{n}"] = loss
        ctx.log(run=tag, losses=res["losses"], n=res["n_nonemb"])

    # 2. small-model sweep for the gamma fits (the cpu scale's mixtures, one run each)
    runs: dict[str, dict] = {}
    for si, tc in enumerate(small):
        for m, p in GAMMA_MIXES.items():
            runs[f"s{si}_{m}"] = res = train("main", p, tc, seed)
            record(f"s{si}_{m}", res, names)
        out[f"s{si}_n_nonemb"] = res["n_nonemb"]
    # 1. independence (and control), replicated as at cpu scale
    independence_study(train, names, ["A", "B", "Aprime", "C_unused"], indep_train_config(cfg, small[0]),
                       cfg["replicas"], seed, out, ctx.log)  # fmt: skip
    fits = gamma_fits(runs, len(small), names, out)
    last = len(small) - 1

    # 3. p* from the larger small size, each family normalised by its own K_i (see the docstring)
    gam = np.array([fits[(last, n)].gamma for n in names])
    out["gamma_floored"] = bool(np.any(gam <= GAMMA_FLOOR))
    gam = np.maximum(gam, GAMMA_FLOOR)
    norm = np.array([fits[(last, n)].k for n in names])
    out |= {f"norm_{n}": float(r) for n, r in zip(names, norm)}
    c = w * np.array([fits[(last, n)].k for n in names]) / norm  # c_i = w_i K_i / R_i = w_i here
    pstar = optimal_ratios(c, gam)
    natural = np.array([out[f"train_tokens_{n}"] for n in names], dtype=np.float64)
    mixes = {"pstar": pstar, "uniform": np.full(3, 1 / 3), "natural": natural / natural.sum()}
    for k, p in mixes.items():
        res = train("main", p, large, seed)
        record(f"big_{k}", res, names)
        out[f"big_{k}_obj"] = weighted_normalised_loss(res["losses"], norm, w)
        out[f"big_{k}_pred_obj_small"] = mixture_objective(p, c, gam)
        for n, pi in zip(names, p):
            out[f"p_{k}_{n}"] = float(pi)
    out["big_n_nonemb"] = res["n_nonemb"]
    out["transfer_gap"] = min(out["big_uniform_obj"], out["big_natural_obj"]) - out["big_pstar_obj"]
    out["transfer_gap_rel"] = out["transfer_gap"] / out["big_pstar_obj"]
    out["mixes"] = {k: [float(x) for x in v] for k, v in (GAMMA_MIXES | INDEP_MIXES).items()}  # artifact
    return out


__all__ = ["ENV", "Encoder", "corpus_code", "corpus_key", "family_table", "language_files", "load_corpus",
           "mixture_windows", "read_language", "run_full", "test_windows", "train_text_mixture"]  # fmt: skip
