"""The semantic reward term: a BERTScore-style greedy-matching F1 (Zhang et al. 2020, Eq. 1-3)
over contextual token embeddings from the frozen SFT model (no code BERT is available offline,
so this is *not* BERTScore; see the README).

For candidate tokens x_1..x_k and reference tokens y_1..y_l with unit-normalised embeddings:

    R = (1/l) sum_j max_i x_i . y_j      P = (1/k) sum_i max_j x_i . y_j      F = 2 P R / (P + R)

No idf weighting and no baseline rescaling (BERTScore's options, both off by default). Each text
is embedded on its own (``<s>`` + text), as BERTScore embeds candidate and reference separately;
the embedding is the final hidden state (after the final norm) of the causal LM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class SemScorer:
    """Greedy-matching F1 under a frozen copy of a model (the SFT policy at RL start)."""

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 64) -> None:
        import copy

        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.tok = tokenizer
        self.batch_size = batch_size

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> list[torch.Tensor]:
        """(len_i, D) unit-norm embeddings of each text's tokens (the ``<s>`` position excluded)."""
        from xentlab.lm.train import hidden_states

        out: list[torch.Tensor] = []
        bos = self.tok.bos_token_id
        pad = self.tok.pad_token_id
        for s in range(0, len(texts), self.batch_size):
            rows = [
                [bos, *self.tok(t, add_special_tokens=False)["input_ids"]]
                for t in texts[s : s + self.batch_size]
            ]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            attn = torch.zeros((len(rows), width), dtype=torch.long)
            for i, r in enumerate(rows):
                ids[i, : len(r)] = torch.tensor(r)
                attn[i, : len(r)] = 1
            h = hidden_states(self.model, {"input_ids": ids, "attention_mask": attn}).float()
            h = torch.nn.functional.normalize(h, dim=-1)
            out += [h[i, 1 : len(r)] for i, r in enumerate(rows)]
        return out

    def f1(self, cands: Sequence[str], refs: Sequence[str]) -> list[float]:
        if len(cands) != len(refs):
            raise ValueError(f"{len(cands)} candidates but {len(refs)} references")
        e = self.embed(list(cands) + list(refs))
        return [greedy_f1(e[i], e[len(cands) + i]) for i in range(len(cands))]


def greedy_f1(x: torch.Tensor, y: torch.Tensor) -> float:
    """Greedy-matching F1 of unit-norm candidate (k, D) and reference (l, D) embeddings; an empty
    candidate scores 0."""
    if x.shape[0] == 0 or y.shape[0] == 0:
        return 0.0
    sim = x @ y.T  # (k, l) cosine similarities
    p = sim.max(dim=1).values.mean()
    r = sim.max(dim=0).values.mean()
    if float(p + r) <= 0:
        return 0.0
    return float(2 * p * r / (p + r))
