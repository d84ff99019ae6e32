"""The CPU-scale tagger and its training loop: embedding -> conv (or BiGRU) -> linear, trained from scratch
(or fine-tuned from a pretrained encoder) with one of the compared losses; the epoch is chosen by
validation span-F1 (as the official code keeps the checkpoint with the best dev F1), and test span-F1 is
reported for that epoch."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from seqeval.metrics import f1_score
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dice_nlp.losses import cross_entropy, dice_loss, focal_loss, paper_class_weights, weighted_cross_entropy
from xentlab.data.tagging import PAD, TaggingData, TaggingSplit, pad_batch

IGNORE = -100  # tag value of padding positions


@dataclass(frozen=True)
class TrainConfig:
    """One training run (the same for every loss)."""

    model: str = "cnn"  # "cnn" (ConvTagger) or "bigru" (BiGRUTagger)
    emb: int = 64  # embedding width
    hidden: int = 64  # GRU units per direction (BiGRU output = 2 * hidden)
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3  # Adam
    grad_clip: float = 1.0  # the official scripts clip at 1.0
    dice_alpha: float = 0.01  # official scripts: DICE_ALPHA=0.01
    dice_alpha_alt: float = 0.3  # the "dsc_alt" arm: a larger self-adjusting exponent (research notes' value)
    dice_smooth: float = 1.0  # official scripts: DICE_SMOOTH=1
    dice_square: bool = True  # official scripts: --dice_square
    focal_gamma: float = 2.0
    wce_k: float = 1.0  # K of the paper's weighted-CE coefficients lg((n - n_t)/n_t + K)


class ConvTagger(nn.Module):
    """embedding -> convolutions of width 3 and 5 (ReLU) -> linear: each tag sees +-3 tokens, enough for the
    trigger-word context of the synthetic task, and several times faster than a BiGRU on one CPU thread."""

    def __init__(self, vocab_size: int, num_tags: int, emb: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb, padding_idx=PAD)
        self.conv1 = nn.Conv1d(emb, 2 * hidden, 3, padding=1)
        self.conv2 = nn.Conv1d(2 * hidden, 2 * hidden, 5, padding=2)
        self.out = nn.Linear(2 * hidden, num_tags)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        keep = (tokens != PAD).unsqueeze(1).float()  # zero the padding so it carries no signal inwards
        h = self.embed(tokens).transpose(1, 2)
        h = torch.relu(self.conv1(h)) * keep
        h = torch.relu(self.conv2(h)) * keep
        return self.out(h.transpose(1, 2))  # (B, T, num_tags)


class BiGRUTagger(nn.Module):
    def __init__(self, vocab_size: int, num_tags: int, emb: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb, padding_idx=PAD)
        self.gru = nn.GRU(emb, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, num_tags)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        # packing keeps the backward direction from reading the right padding first
        packed = pack_padded_sequence(
            self.embed(tokens), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        h, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=tokens.shape[1])
        return self.out(h)  # (B, T, num_tags)


def _batches(split: TaggingSplit, idx: np.ndarray, batch_size: int):
    for start in range(0, len(idx), batch_size):
        sel = idx[start : start + batch_size]
        toks = torch.from_numpy(pad_batch([split.tokens[i] for i in sel], PAD))
        tags = torch.from_numpy(pad_batch([split.tags[i] for i in sel], IGNORE))
        lengths = torch.tensor([len(split.tokens[i]) for i in sel])
        yield toks, tags, lengths


def make_loss(name: str, cfg: TrainConfig, class_counts: np.ndarray):
    """loss(logits (B, T, C), tags (B, T)) for one of the compared objectives."""
    if name == "ce":
        return lambda z, y: cross_entropy(z, y, ignore_index=IGNORE)
    if name == "wce":
        w = paper_class_weights(class_counts, k=cfg.wce_k)
        return lambda z, y: weighted_cross_entropy(z, y, w, ignore_index=IGNORE)
    if name == "focal":
        return lambda z, y: focal_loss(z, y, gamma=cfg.focal_gamma, ignore_index=IGNORE)
    dice_kw = {"smooth": cfg.dice_smooth, "square_denominator": cfg.dice_square, "ignore_index": IGNORE}
    if name == "dice":  # plain dice loss (DL): no self-adjusting factor
        return lambda z, y: dice_loss(z, y, alpha=0.0, **dice_kw)
    if name == "dsc":  # the official DSC: alpha = 0.01, s = 1, squared denominator, per token
        return lambda z, y: dice_loss(z, y, alpha=cfg.dice_alpha, **dice_kw)
    if name == "dsc_alt":  # the same per-token DSC with alpha = dice_alpha_alt
        return lambda z, y: dice_loss(z, y, alpha=cfg.dice_alpha_alt, **dice_kw)
    if name == "dsc_batch":  # DSC pooled over the batch per class (the official binary path's granularity)
        return lambda z, y: dice_loss(z, y, alpha=cfg.dice_alpha, batch_dice=True, **dice_kw)
    raise ValueError(f"unknown loss {name!r}")


@torch.no_grad()
def predict(model: nn.Module, split: TaggingSplit, batch_size: int = 256) -> list[np.ndarray]:
    """Argmax tags per sentence (the threshold-free decision, the same for every loss)."""
    model.eval()
    out: list[np.ndarray] = []
    for toks, _, lengths in _batches(split, np.arange(len(split)), batch_size):
        pred = model(toks, lengths).argmax(-1).numpy()
        out += [pred[i, : int(n)] for i, n in enumerate(lengths)]
    return out


def span_f1(data: TaggingData, split: TaggingSplit, pred: list[np.ndarray]) -> float:
    """Exact-match entity span F1 (CoNLL, micro over types) via seqeval."""
    gold = [data.tag_strings(t) for t in split.tags]
    return float(f1_score(gold, [data.tag_strings(p) for p in pred], zero_division=0))


def improves(val_f1: float, best_f1: float) -> bool:
    """The official best-dev rule: a later epoch that TIES the best dev F1 replaces it (``find_best_checkpoint_on_dev``
    in tasks/{mrc_ner,glue,pos}/train.py reads the saved checkpoints in order and keeps one when
    ``current_f1 >= best_f1_on_dev``), so among tied epochs the last one is kept."""
    return val_f1 >= best_f1


def build_tagger(
    data: TaggingData, cfg: TrainConfig, init_state: dict[str, Tensor] | None = None
) -> nn.Module:
    """A freshly initialised tagger, or (``init_state``) one whose encoder (every weight but the output
    layer ``out``) is loaded from a pretrained state; its embedding may hold extra rows (the [MASK] token)."""
    arch = {"cnn": ConvTagger, "bigru": BiGRUTagger}[cfg.model]
    vocab_rows = data.vocab_size if init_state is None else init_state["embed.weight"].shape[0]
    model = arch(vocab_rows, data.num_tags, cfg.emb, cfg.hidden)
    if init_state is not None:
        missing, unexpected = model.load_state_dict(init_state, strict=False)
        if unexpected or sorted(missing) != ["out.bias", "out.weight"]:
            raise ValueError(
                f"init_state must hold exactly the encoder weights; missing {missing}, unexpected {unexpected}"
            )
    return model


def train_tagger(
    data: TaggingData,
    loss_name: str,
    cfg: TrainConfig,
    seed: int,
    log=None,
    init_state: dict[str, Tensor] | None = None,
) -> dict:
    """Train with ``loss_name``; returns val/test span-F1 at the best-validation epoch. From scratch by
    default; with ``init_state`` (a pretrained encoder from ``dice_nlp.pretrain``: every weight but the
    output layer) the encoder starts from it and only the tag layer is freshly initialised, as in
    fine-tuning. Everything else (optimiser, lr, epochs, selection) is the same."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_tagger(data, cfg, init_state)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    counts = np.bincount(np.concatenate(data.train.tags), minlength=data.num_tags)
    loss_fn = make_loss(loss_name, cfg, counts)
    best = {"val_f1": -1.0, "epoch": 0}
    best_state = None
    curve = []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        for toks, tags, lengths in _batches(data.train, rng.permutation(len(data.train)), cfg.batch_size):
            loss = loss_fn(model(toks, lengths), tags)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
        val_f1 = span_f1(data, data.val, predict(model, data.val))
        curve.append(val_f1)
        if log is not None:
            log(loss=loss_name, epoch=epoch, train_loss=loss.item(), val_f1=val_f1)
        if improves(val_f1, best["val_f1"]):
            best = {"val_f1": val_f1, "epoch": epoch}
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    test_pred = predict(model, data.test)
    return {**best, "test_f1": span_f1(data, data.test, test_pred), "val_curve": curve}
