"""``--scale full``: the encoder/decoder depth ladders on a local parallel corpus (WMT En->De style).

The paper trains on in-house web-crawled En-De (2.2B pairs) with a 32k sentencepiece vocabulary and
reports per-token test cross-entropy (log-perplexity). Here the user supplies a corpus on disk; nothing
is downloaded (``xentlab.repro.local_data``).

Input (config key ``data_root`` or ``$NMT_SCALING_DATA``): a directory holding, for the languages
``src_lang`` / ``tgt_lang`` (default en / de), six plain UTF-8 files with one sentence per line, line i of
``<split>.<src>`` translating line i of ``<split>.<tgt>``::

    train.en  train.de     (e.g. WMT14 En-De training data, 4.5M pairs)
    valid.en  valid.de     (e.g. newstest2013: early stopping and the checkpoint)
    test.en   test.de      (e.g. newstest2014: the reported loss)

Pipeline (one call = one (encoder depth, decoder depth) of the ladder and one seed):

1. A joint byte-level BPE (``tokenizers``, ``vocab_size`` merges' worth, specials <pad> <s> </s> at ids 0,
   1, 2 = ``nmt_scaling.task``'s PAD/BOS/EOS) is trained on the TRAINING split only (at most
   ``tokenizer_sentences`` pairs, a seeded sample), and cached under ``xentlab.data.cache_dir`` keyed by
   the files' identity (path, size, mtime), the settings and the code that builds it (``corpus_code()``;
   xentlab.data.cache, "The key rule"); every model and seed reuses it.
2. The three splits are encoded once (EOS appended to both sides) and cached as arrays (keyed the same
   way, plus ``max_len``). Pairs with a side longer than ``max_len`` tokens are dropped from every split
   (counted in the metrics): the model has ``max_len`` learned positions.
3. The package's own ``Seq2Seq`` (``nmt_scaling.model``) at ``d_model``/``heads``/``ffn`` and the unit's
   depths is trained on token-bucketed batches (at most ``batch_tokens`` padded target tokens each) until
   its loss on the first ``valid_sents`` VALIDATION pairs stops improving (``nmt_scaling.stopping``, the
   cpu scale's rule: every ``eval_every`` steps, ``patience``, ``min_delta``, cap ``max_steps``). The
   batches depend on the seed only, so every model of a seed sees the same data in the same order. AdamW
   with ``nmt_scaling.train.lr_at``'s warm-up, then a constant rate (no planned end), label
   smoothing ``label_smoothing`` in the training loss only, dropout ``dropout`` inside the layers, bf16
   autocast on CUDA.
4. Metric: teacher-forced cross-entropy per target token (EOS counted, PAD excluded, no smoothing) on the
   test split (``final_loss``) of the best-validation checkpoint, the same quantity as the cpu scale; the
   validation curve is kept as an artifact.

The fits and claims are the cpu scale's (``nmt_scaling.analysis``); the exact L_inf of the synthetic task
has no counterpart here, so ``bi/l_inf_minus_true`` is undefined at this scale.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nmt_scaling.model import ModelShape, decoder_input, seeded_model
from nmt_scaling.stopping import EarlyStopping, StopRule
from nmt_scaling.task import BOS, EOS, PAD
from nmt_scaling.train import lr_at
from xentlab.data.cache import (
    atomic_write_bytes,
    cache_dir,
    cached_arrays,
    code_key,
    file_lock,
    source_digest,
)
from xentlab.repro.local_data import MissingLocalData, local_path

ENV = "NMT_SCALING_DATA"
SPLITS = ("train", "valid", "test")
SPECIALS = ("<pad>", "<s>", "</s>")  # ids 0, 1, 2: PAD, BOS, EOS of nmt_scaling.task
NEEDS = (
    "a directory with train.SRC, train.TGT, valid.SRC, valid.TGT, test.SRC, test.TGT (SRC/TGT = the "
    "config's src_lang/tgt_lang, default en/de): plain UTF-8 text, one sentence per line, line i of .SRC "
    "translating line i of .TGT (e.g. WMT14 En-De with newstest2013/2014); see packages/nmt-scaling/README.md"
)
# The cached ids use task.py's special ids; pinned here, so the corpus key need not hash task.py (a change
# of those ids stops the import instead of reading a corpus encoded with the old ones).
assert (PAD, BOS, EOS) == (0, 1, 2)

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the tokenizer and corpus cache keys (xentlab.data.cache, "The key
rule")"""


@dataclass(frozen=True)
class FullConfig:
    """One model of the full-scale ladder.

    enc_layers, dec_layers: the scaled depths; d_model, heads, enc_ffn, dec_ffn: the shared layer shape.
    dropout, norm_first: nn.Transformer's dropout and pre-LN (see ``nmt_scaling.model.ModelShape``).
    data_root: the corpus directory (None: ``$NMT_SCALING_DATA``); src_lang, tgt_lang: file suffixes.
    vocab_size: joint BPE vocabulary; tokenizer_sentences: training pairs the BPE is trained on (0 = all).
    max_len: positions per side (longer pairs are dropped); max_train_sentences: cap on the training
        pairs read (0 = all).
    batch_tokens: padded target tokens per batch.
    max_steps, eval_every, patience, min_delta, valid_sents: the early-stopping rule
        (``nmt_scaling.stopping``) on the first ``valid_sents`` validation pairs (0 = all).
    lr, warmup_steps, beta2, weight_decay, clip: AdamW + ``lr_at`` schedule + grad-norm clip.
    label_smoothing: in the training loss only (the reported CE is unsmoothed).
    eval_tokens: padded target tokens per evaluation batch; dtype: autocast dtype on CUDA ("bfloat16" or
        "float32").
    """

    enc_layers: int = 6
    dec_layers: int = 6
    d_model: int = 512
    heads: int = 8
    enc_ffn: int = 2048
    dec_ffn: int = 2048
    dropout: float = 0.1
    norm_first: bool = True
    data_root: str | None = None
    src_lang: str = "en"
    tgt_lang: str = "de"
    vocab_size: int = 32_000
    tokenizer_sentences: int = 1_000_000
    max_len: int = 128
    max_train_sentences: int = 0
    batch_tokens: int = 25_000
    max_steps: int = 100_000
    eval_every: int = 1000
    patience: int = 5
    min_delta: float = 0.003
    valid_sents: int = 3000
    lr: float = 7e-4
    warmup_steps: int = 4000
    beta2: float = 0.98
    weight_decay: float = 0.0
    clip: float = 1.0
    label_smoothing: float = 0.1
    eval_tokens: int = 20_000
    dtype: str = "bfloat16"


# ---- the corpus --------------------------------------------------------------------------------------
def corpus_files(cfg: FullConfig) -> dict[str, tuple[Path, Path]]:
    """{split: (source file, target file)}; a missing variable or file names the variable and layout."""
    root = local_path({"data_root": cfg.data_root}, "data_root", ENV, needs=NEEDS)
    files = {s: (root / f"{s}.{cfg.src_lang}", root / f"{s}.{cfg.tgt_lang}") for s in SPLITS}
    missing = [p.name for pair in files.values() for p in pair if not p.is_file()]
    if missing:
        raise MissingLocalData(f"{ENV}={root} lacks {', '.join(missing)}: it must hold {NEEDS}")
    return files


def read_lines(path: Path, limit: int = 0) -> list[str]:
    """The file's lines without their newline (the first ``limit`` when limit > 0)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if limit and i >= limit:
                break
            out.append(line.rstrip("\n").rstrip("\r"))
    return out


def read_pairs(src: Path, tgt: Path, limit: int = 0) -> tuple[list[str], list[str]]:
    s, t = read_lines(src, limit), read_lines(tgt, limit)
    if len(s) != len(t):
        raise ValueError(
            f"{src.name} has {len(s)} lines but {tgt.name} has {len(t)}: the files must be aligned"
        )
    if not s:
        raise ValueError(f"{src} is empty")
    return s, t


@functools.lru_cache(maxsize=1)
def corpus_code() -> str:
    """The code part of both cache keys: this module (reading, the tokenizer's sample and trainer, the
    encoding, the max_len filter) and the libraries whose numbers end up in the cached files (``tokenizers``'
    BPE trainer and encoder, numpy's seeded sample and arrays). Any edit of this file gives new keys, so a
    tokenizer or corpus written by older code is never read (it replaces a hand-bumped FORMAT)."""
    return code_key(SOURCE_DIGEST, libraries=("numpy", "tokenizers"))


def _identity(files: dict[str, tuple[Path, Path]], *parts) -> str:
    """A cache key from the files' identity (resolved path, size, mtime), the settings and the code."""
    h = hashlib.sha256(f"nmt-full|{corpus_code()}|{parts}".encode())
    for pair in files.values():
        for p in pair:
            st = p.stat()
            h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def train_tokenizer(texts: list[str], vocab_size: int):
    """A joint byte-level BPE (``tokenizers``): every string round-trips, no unknown token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < 256 + len(SPECIALS):
        raise ValueError(f"vocab_size must be >= {256 + len(SPECIALS)} (bytes + specials), got {vocab_size}")
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )  # fmt: skip
    tk.train_from_iterator(texts, trainer=trainer)
    return tk


def tokenizer_key(cfg: FullConfig, files: dict[str, tuple[Path, Path]]) -> str:
    """The tokenizer's cache key: the files, the settings that shape the BPE, ``corpus_code()``."""
    return _identity(files, "tok", cfg.vocab_size, cfg.tokenizer_sentences, cfg.max_train_sentences)


def splits_key(cfg: FullConfig, files: dict[str, tuple[Path, Path]]) -> str:
    """The encoded splits' cache key: the tokenizer's settings plus ``max_len``, the files, the code."""
    return _identity(
        files, "enc", cfg.vocab_size, cfg.tokenizer_sentences, cfg.max_train_sentences, cfg.max_len
    )


def get_tokenizer(cfg: FullConfig, files: dict[str, tuple[Path, Path]]):
    """The cached joint BPE of the training split (trained on first use, under a file lock)."""
    from tokenizers import Tokenizer

    key = tokenizer_key(cfg, files)
    path = cache_dir("nmt-scaling", "tokenizers") / f"bpe-{cfg.vocab_size}-{key}.json"
    with file_lock(path.with_suffix(".lock")):
        if not path.exists():
            s, t = read_pairs(*files["train"], limit=cfg.max_train_sentences)
            idx = np.arange(len(s))
            if cfg.tokenizer_sentences and len(s) > cfg.tokenizer_sentences:
                idx = np.sort(np.random.default_rng(0).choice(len(s), cfg.tokenizer_sentences, replace=False))
            tk = train_tokenizer([s[i] for i in idx] + [t[i] for i in idx], cfg.vocab_size)
            atomic_write_bytes(path, tk.to_str().encode("utf-8"))
    return Tokenizer.from_file(str(path))


@dataclass
class Split:
    """A tokenized split: ragged source/target ids (EOS appended) as flat arrays with offsets."""

    src: np.ndarray
    src_off: np.ndarray
    tgt: np.ndarray
    tgt_off: np.ndarray
    dropped: int

    def __len__(self) -> int:
        return len(self.src_off) - 1

    def lengths(self) -> tuple[np.ndarray, np.ndarray]:
        return np.diff(self.src_off), np.diff(self.tgt_off)

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded (B, max src len) and (B, max tgt len) tensors of the pairs ``idx``."""
        return _pad(self.src, self.src_off, idx), _pad(self.tgt, self.tgt_off, idx)


def _pad(flat: np.ndarray, off: np.ndarray, idx: np.ndarray) -> torch.Tensor:
    lens = off[idx + 1] - off[idx]
    out = np.full((len(idx), int(lens.max())), PAD, dtype=np.int64)
    for r, (i, n) in enumerate(zip(idx, lens)):
        out[r, :n] = flat[off[i] : off[i] + n]
    return torch.from_numpy(out)


def _encode(tk, lines: list[str], dtype, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """(flat ids with EOS after every sentence, per-sentence lengths), built chunk by chunk so that a
    WMT-sized split never exists as Python lists of ints."""
    flats, lens = [], []
    for i in range(0, len(lines), chunk):
        enc = tk.encode_batch(lines[i : i + chunk], add_special_tokens=False)
        n = np.fromiter((len(e.ids) + 1 for e in enc), dtype=np.int64, count=len(enc))
        flats.append(np.fromiter((x for e in enc for x in (*e.ids, EOS)), dtype=dtype, count=int(n.sum())))
        lens.append(n)
    return np.concatenate(flats), np.concatenate(lens)


def load_splits(cfg: FullConfig, files: dict[str, tuple[Path, Path]], tk) -> dict[str, Split]:
    """Encode the three splits once (cached as arrays; pairs longer than max_len dropped)."""
    key = splits_key(cfg, files)

    def build() -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        dtype = np.uint16 if cfg.vocab_size <= 65_535 else np.int32
        for split, (sp, tp) in files.items():
            s, t = read_pairs(sp, tp, limit=cfg.max_train_sentences if split == "train" else 0)
            (fs, ls), (ft, lt) = _encode(tk, s, dtype), _encode(tk, t, dtype)
            keep = (ls <= cfg.max_len) & (lt <= cfg.max_len)
            if not keep.any():
                raise ValueError(f"every {split} pair is longer than max_len={cfg.max_len} tokens")
            for side, flat, lens in (("src", fs, ls), ("tgt", ft, lt)):
                arrays[f"{split}_{side}"] = flat[np.repeat(keep, lens)]
                arrays[f"{split}_{side}_off"] = np.concatenate([[0], np.cumsum(lens[keep])])
            arrays[f"{split}_dropped"] = np.array(int((~keep).sum()))
        return arrays

    with file_lock(cache_dir("nmt-scaling") / f"corpus-{key}.lock"):
        a = cached_arrays(f"nmt-scaling-corpus-{key}", build)
    return {
        s: Split(a[f"{s}_src"], a[f"{s}_src_off"], a[f"{s}_tgt"], a[f"{s}_tgt_off"], int(a[f"{s}_dropped"]))
        for s in SPLITS
    }


# ---- batching ----------------------------------------------------------------------------------------
def token_batches(split: Split, batch_tokens: int, seed: int, epoch: int) -> list[np.ndarray]:
    """One epoch of batches (fairseq-style bucketing): a seeded shuffle, pools of ~100 batches sorted by
    length, cut so that (rows x longest target or source) <= batch_tokens, then the batches shuffled.
    Depends on (seed, epoch) only, not on the model: every model of a seed sees the same batches."""
    rng = np.random.default_rng([seed, epoch, 7])
    ls, lt = split.lengths()
    longest = np.maximum(ls, lt)
    if int(longest.max()) > batch_tokens:
        raise ValueError(
            f"batch_tokens={batch_tokens} is smaller than the longest pair ({int(longest.max())})"
        )
    order = rng.permutation(len(split))
    pool = max(1, 100 * batch_tokens // max(1, int(np.mean(longest))))
    batches = []
    for p in range(0, len(order), pool):
        chunk = order[p : p + pool]
        chunk = chunk[np.argsort(longest[chunk], kind="stable")]
        start, width = 0, 0
        for j, i in enumerate(chunk):
            w = max(width, int(longest[i]))
            if (j + 1 - start) * w > batch_tokens:
                batches.append(chunk[start:j])
                start, w = j, int(longest[i])
            width = w
        batches.append(chunk[start:])
    return [batches[i] for i in rng.permutation(len(batches))]


def batch_stream(split: Split, batch_tokens: int, seed: int):
    """Endless batches, epoch after epoch (each epoch reshuffled from (seed, epoch))."""
    epoch = 0
    while True:
        yield from token_batches(split, batch_tokens, seed, epoch)
        epoch += 1


@torch.no_grad()
def split_loss(
    model, split: Split, device, eval_tokens: int, limit: int = 0, dtype=None
) -> tuple[float, int]:
    """(mean teacher-forced CE per target token in nats, #target tokens) over the first ``limit`` pairs
    (0 = all); PAD excluded, EOS counted, no label smoothing. Batches are length-sorted (order-free sum)."""
    n = len(split) if not limit else min(limit, len(split))
    view = Split(split.src, split.src_off[: n + 1], split.tgt, split.tgt_off[: n + 1], 0)
    was = model.training
    model.eval()
    total, count = 0.0, 0
    for idx in token_batches(view, max(eval_tokens, int(np.max(np.maximum(*view.lengths())))), 0, 0):
        s, t = (x.to(device) for x in view.batch(np.sort(idx)))
        with _autocast(device, dtype):
            logits = model(s, decoder_input(t))
        total += F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), t.reshape(-1), ignore_index=PAD, reduction="sum"
        ).item()
        count += int((t != PAD).sum())
    model.train(was)
    return total / count, count


def _autocast(device, dtype):
    device = torch.device(device)
    if device.type == "cuda" and dtype is not None and dtype != torch.float32:
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, enabled=False)


# ---- one model of the ladder -------------------------------------------------------------------------
def run_full(cfg: dict, seed: int, ctx) -> dict:
    """Train one (encoder depth, decoder depth) on the local corpus; the unit's metrics (see the module
    docstring). ``cfg`` is the experiment's full config: {"role": ..., "full": FullConfig fields}."""
    fc = FullConfig(**cfg["full"])
    device = torch.device(ctx.device)
    dtype = getattr(torch, fc.dtype)
    files = corpus_files(fc)
    tk = get_tokenizer(fc, files)
    data = load_splits(fc, files, tk)
    vocab = tk.get_vocab_size()
    shape = ModelShape(fc.enc_layers, fc.dec_layers, vocab, vocab, d_model=fc.d_model, heads=fc.heads,
                       enc_ffn=fc.enc_ffn, dec_ffn=fc.dec_ffn, max_len=fc.max_len, dropout=fc.dropout,
                       norm_first=fc.norm_first)  # fmt: skip
    model = seeded_model(shape, seed).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=fc.lr, betas=(0.9, fc.beta2), weight_decay=fc.weight_decay)
    stopper = EarlyStopping(StopRule(fc.eval_every, fc.patience, fc.min_delta, fc.max_steps))
    stream = batch_stream(data["train"], fc.batch_tokens, seed)
    tokens, step, t0 = 0, 0, time.perf_counter()
    model.train()
    while step < fc.max_steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, fc.lr, fc.warmup_steps)
        src, tgt = (x.to(device, non_blocking=True) for x in data["train"].batch(next(stream)))
        with _autocast(device, dtype):
            logits = model(src, decoder_input(tgt))
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tgt.reshape(-1),
                               ignore_index=PAD, label_smoothing=fc.label_smoothing)  # fmt: skip
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), fc.clip)
        opt.step()
        tokens += int((tgt != PAD).sum())
        step += 1
        if step % fc.eval_every == 0:
            vl, _ = split_loss(
                model, data["valid"], device, fc.eval_tokens, limit=fc.valid_sents, dtype=dtype
            )
            ctx.log(step=step, train_loss=loss.item(), valid_loss=vl, tokens=tokens)
            if stopper.update(step, vl, model):
                break
    stopper.restore(model)  # the best-validation checkpoint is the model that is scored
    final, n_test_tokens = split_loss(model, data["test"], device, fc.eval_tokens, dtype=dtype)
    return {
        "n_enc": model.n_encoder(),
        "n_dec": model.n_decoder(),
        "final_loss": final,
        "train_tokens": tokens,
        "train_seconds": time.perf_counter() - t0,
        "vocab_size": vocab,
        "n_train_pairs": len(data["train"]),
        "n_test_pairs": len(data["test"]),
        "n_test_tokens": n_test_tokens,
        "dropped_train_pairs": data["train"].dropped,
        "dropped_test_pairs": data["test"].dropped,
        "best_valid_loss": stopper.best_loss,
        "best_step": stopper.best_step,
        "stop_step": step,
        "converged": stopper.converged,
        "curve_steps": stopper.steps,
        "curve_valid": stopper.losses,
        "shape": json.loads(json.dumps(asdict(shape))),
    }


__all__ = ["ENV", "FullConfig", "Split", "batch_stream", "corpus_code", "corpus_files", "get_tokenizer",
           "load_splits", "run_full", "split_loss", "splits_key", "token_batches", "tokenizer_key",
           "train_tokenizer"]  # fmt: skip
