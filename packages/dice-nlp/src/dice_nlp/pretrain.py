"""A label-free, loss-neutral pretraining of the tagger's encoder: BERT-style masked-token prediction on the
token stream of the training sentences (no tags are read). It stands in for the pretrained BERT that the
paper fine-tunes, so that the compared losses start from informative features instead of from scratch.

The masked-LM model IS a ConvTagger whose "tags" are the vocabulary ids: the same embedding and
convolutions (the encoder) with an output layer over the vocabulary. One extra embedding row is the [MASK]
token (id = the task's vocab_size). Fine-tuning keeps every encoder weight and draws a fresh tag layer,
as BERT fine-tuning puts a new classifier on the pretrained encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from dice_nlp.tagger import IGNORE, ConvTagger, _batches
from xentlab.data.tagging import PAD, TaggingData, TaggingSplit


@dataclass(frozen=True)
class PretrainConfig:
    """Masked-token pretraining of the encoder (BERT's masking recipe, Devlin et al. 2019, Sec. 3.1)."""

    steps: int = 600  # optimiser steps (batches), cycling through shuffled epochs of the training sentences
    batch_size: int = 64
    lr: float = 5e-3  # Adam, the same lr as the tagging runs
    grad_clip: float = 1.0
    mask_prob: float = 0.15  # fraction of (non-padding) tokens selected for prediction
    emb: int = 48  # encoder shape: must match the tagger that is fine-tuned
    hidden: int = 32


def mask_tokens(
    tokens: Tensor, mask_id: int, vocab_size: int, mask_prob: float, gen: torch.Generator
) -> tuple[Tensor, Tensor]:
    """BERT masking: each non-padding token is selected with probability ``mask_prob``; a selected token is
    replaced by [MASK] (80%), by a random real token id in [1, vocab_size) (10%) or kept (10%). Returns
    (inputs, targets) with targets = the original id at selected positions and IGNORE elsewhere."""
    if not 0 < mask_prob < 1:
        raise ValueError(f"mask_prob must lie in (0, 1), got {mask_prob}")
    real = tokens != PAD
    selected = (torch.rand(tokens.shape, generator=gen) < mask_prob) & real
    targets = torch.where(selected, tokens, torch.full_like(tokens, IGNORE))
    u = torch.rand(tokens.shape, generator=gen)
    random_ids = torch.randint(1, vocab_size, tokens.shape, generator=gen)
    inputs = torch.where(selected & (u < 0.8), torch.full_like(tokens, mask_id), tokens)
    inputs = torch.where(selected & (u >= 0.8) & (u < 0.9), random_ids, inputs)
    return inputs, targets


@torch.no_grad()
def masked_accuracy(
    model: nn.Module, split: TaggingSplit, mask_id: int, vocab_size: int, mask_prob: float, seed: int
) -> float:
    """Accuracy of the masked-token predictions on ``split`` (tokens only, a label-free sanity check)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    hit = total = 0
    for toks, _, lengths in _batches(split, np.arange(len(split)), 256):
        inputs, targets = mask_tokens(toks, mask_id, vocab_size, mask_prob, gen)
        sel = targets != IGNORE
        hit += int((model(inputs, lengths).argmax(-1)[sel] == targets[sel]).sum())
        total += int(sel.sum())
    return hit / max(total, 1)


def pretrain_encoder(data: TaggingData, cfg: PretrainConfig, seed: int) -> tuple[dict[str, Tensor], dict]:
    """Masked-token pretraining on ``data.train``'s token stream. Returns the encoder's state dict (every
    weight but the output layer, with the [MASK] embedding row) and stats (final train loss, validation
    masked-token accuracy before and after)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    mask_id = data.vocab_size  # the extra embedding row
    model = ConvTagger(data.vocab_size + 1, data.vocab_size, cfg.emb, cfg.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    acc0 = masked_accuracy(model, data.val, mask_id, data.vocab_size, cfg.mask_prob, seed)
    step, loss = 0, torch.tensor(float("nan"))
    while step < cfg.steps:
        model.train()
        for toks, _, lengths in _batches(data.train, rng.permutation(len(data.train)), cfg.batch_size):
            inputs, targets = mask_tokens(toks, mask_id, data.vocab_size, cfg.mask_prob, gen)
            logits = model(inputs, lengths)
            loss = nn.functional.cross_entropy(logits.reshape(-1, data.vocab_size), targets.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            if step >= cfg.steps:
                break
    acc = masked_accuracy(model, data.val, mask_id, data.vocab_size, cfg.mask_prob, seed)
    encoder = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("out.")}
    return encoder, {"mlm_loss": loss.item(), "mlm_val_acc_init": acc0, "mlm_val_acc": acc}
