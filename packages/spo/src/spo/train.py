"""The preference phase: DPO (or IPO), optionally with the SPO degree loss, from the SFT model.

Each step takes ``pair_batch`` preference pairs and (SPO arms) ``degree_batch`` degree examples,
runs them through the policy in ONE forward pass (rows [chosen, rejected, degree]), and computes

    L = L_DPO(pairs) + lambda * CE(head(mean-pooled response states of the degree rows), m).

The reference model is the SFT model; it never changes, so its sequence log-probs of every pair
are computed once before training (what trl calls ``precompute_ref_log_probs``). DPO-only arms
use the same pairs, in the same order, for the same number of steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xentlab.lm.preference import dpo_loss, ipo_loss
from xentlab.lm.train import (
    LMTrainConfig,
    collate,
    concat_batches,
    fit,
    hidden_states,
    token_cross_entropy,
)
from xentlab.train.loop import EpochSampler


@dataclass(frozen=True)
class PrefConfig:
    """steps, pair_batch (pairs per step), lr: the AdamW phase (warm-up + cosine, as in
    ``xentlab.lm.train``). beta: DPO's beta. align: "dpo" | "ipo". lam: SPO's lambda (0: plain
    alignment, no degree batch). degree_batch: degree examples per step. n_classes: K."""

    steps: int = 60
    pair_batch: int = 16
    lr: float = 5e-4
    beta: float = 0.1
    align: str = "dpo"
    lam: float = 0.0
    degree_batch: int = 16
    n_classes: int = 4
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.align not in ("dpo", "ipo"):
            raise ValueError(f"align must be 'dpo' or 'ipo', got {self.align!r}")


class PolicyWithHead(nn.Module):
    """The causal LM and the SPO degree head, so that one optimiser (``xentlab.lm.train.fit``) updates both."""

    def __init__(self, lm: Any, head: nn.Module | None):
        super().__init__()
        self.lm = lm
        self.head = head


@torch.no_grad()
def sequence_logprobs(model: Any, examples: list, pad_id: int, batch_size: int = 128) -> torch.Tensor:
    """log p(response | prompt) of each example under ``model`` (eval mode), as one tensor."""
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(examples), batch_size):
        batch = collate(examples[i : i + batch_size], pad_id)
        head = model.get_output_embeddings()
        out.append(
            -token_cross_entropy(hidden_states(model, batch), head.weight, batch["labels"], reduction="sum")
        )
    model.train(was)
    return torch.cat(out)


def train_preference(
    model: Any,
    chosen: list,
    rejected: list,
    degree: list,
    degree_labels: list[int],
    cfg: PrefConfig,
    *,
    pad_id: int,
    seed: int,
    on_log: Any = None,
) -> tuple[nn.Module | None, list[dict[str, float]]]:
    """Train ``model`` (the policy, a copy of the SFT model) in place. Returns (degree head, history)."""
    from spo.spo_loss import DegreeHead, degree_loss, spo_objective

    ref_all = sequence_logprobs(model, chosen + rejected, pad_id)
    n = len(chosen)
    ref_chosen, ref_rejected = ref_all[:n], ref_all[n:]
    # one seeded stream of pair indices (the same for every arm of a seed); chosen and rejected
    # rows of a step are the same pairs
    pair_sampler = EpochSampler(n, cfg.pair_batch, seed, drop_last=True)
    chosen_rows, rejected_rows = _Rows(chosen, pad_id), _Rows(rejected, pad_id)
    use_spo = cfg.lam > 0
    head = None
    if use_spo:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 17)
            head = DegreeHead(model.config.hidden_size, cfg.n_classes)
        deg_sampler = EpochSampler(len(degree), cfg.degree_batch, seed + 29, drop_last=True)
        deg_rows = _Rows(degree, pad_id)
        deg_labels = torch.tensor(degree_labels, dtype=torch.long)
    wrapper = PolicyWithHead(model, head)
    lm_head = model.get_output_embeddings()

    def loss_fn(w: PolicyWithHead, step: int):
        ids = pair_sampler(step)
        batches = [chosen_rows(ids), rejected_rows(ids)]
        if use_spo:
            deg_ids = deg_sampler(step)
            batches.append(deg_rows(deg_ids))
        batch = concat_batches(*batches, pad_id=pad_id)
        hidden = hidden_states(w.lm, batch)
        p = len(ids)
        logps = -token_cross_entropy(
            hidden[: 2 * p], lm_head.weight, batch["labels"][: 2 * p], reduction="sum"
        )
        args = (logps[:p], logps[p:], ref_chosen[ids], ref_rejected[ids])
        if cfg.align == "dpo":
            pref = dpo_loss(*args, beta=cfg.beta)
        else:
            lengths = (batch["labels"][: 2 * p, 1:] != -100).sum(1).to(logps.dtype)
            pref = ipo_loss(*args, beta=cfg.beta, chosen_lengths=lengths[:p], rejected_lengths=lengths[p:])
        stats = pref.stats()
        ssl = None
        if use_spo:
            logits = w.head(hidden[2 * p :], batch["labels"][2 * p :])
            target = deg_labels[deg_ids]
            ssl = degree_loss(logits, target)
            stats["degree_loss"] = float(ssl.detach())
            stats["degree_acc"] = float((logits.argmax(-1) == target).float().mean())
        return spo_objective(pref.loss, ssl, cfg.lam), stats

    history = fit(
        wrapper,
        loss_fn,
        LMTrainConfig(steps=cfg.steps, batch_size=cfg.pair_batch, lr=cfg.lr, log_every=cfg.log_every),
        on_log=on_log,
    )
    return head, history


@torch.no_grad()
def degree_accuracy(model: Any, head: nn.Module, examples: list, labels: list[int], pad_id: int) -> float:
    """Accuracy of the degree head on held-out degree examples (chance: 1 / K)."""
    model.eval()
    head.eval()
    correct = 0
    for i in range(0, len(examples), 128):
        batch = collate(examples[i : i + 128], pad_id)
        pred = head(hidden_states(model, batch), batch["labels"]).argmax(-1)
        correct += int((pred == torch.tensor(labels[i : i + 128])).sum())
    return correct / len(examples)


class _Rows:
    """Padded rows of a fixed example list, trimmed per selection to its longest row."""

    def __init__(self, examples: list, pad_id: int):
        self.tensors = collate(examples, pad_id)
        self.lengths = self.tensors["attention_mask"].sum(1)

    def __call__(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        width = int(self.lengths[idx].max())
        return {k: v[idx, :width] for k, v in self.tensors.items()}
