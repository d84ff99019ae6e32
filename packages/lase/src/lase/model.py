"""The LASE head: a projection MLP on frozen backbone features, and a language classifier behind a GRL.

Architecture (paper Sec. 3; official code praxelhq/lase, models/lase.py):

    backbone features (frozen) --Linear(d_in, 512)-ReLU-Dropout(0.1)-Linear(512, 256)--> embedding e
    e --GRL(lambda_t)--> Linear(256, 256)-ReLU-Dropout(0.1)-Linear(256, n_languages) --> language logits

The embedding e is the speaker embedding. The official backbone is WavLM-base-plus (d_in = 768);
at cpu scale it is the fixed MFCC-statistics frontend of xentlab.audio (d_in = 80), and the head keeps
the official 512/256 widths.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xentlab.losses.gradient_reversal import GradientReversal


@dataclass(frozen=True)
class LambdaSchedule:
    """GRL strength per step: 0 for ``warmup`` steps, then linear up to ``peak`` over ``ramp`` steps, then hold.

    Official r1 values: warmup 200, ramp 500, peak 0.1 (scripts/modal_lase_train.py). Steps count from 1
    as in the official loop, so lambda is 0 for steps 1..199, peak * (step - 200) / 500 for 200..699, then peak.
    """

    warmup: int = 200
    ramp: int = 500
    peak: float = 0.1

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return 0.0
        t = step - self.warmup
        if self.ramp <= 0 or t >= self.ramp:
            return self.peak
        return self.peak * t / self.ramp


class ProjectionHead(nn.Module):
    """d_in -> hidden -> emb_dim MLP (official: 768 -> 512 -> 256, ReLU, dropout 0.1)."""

    def __init__(self, d_in: int, hidden: int = 512, emb_dim: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, emb_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LanguageClassifier(nn.Module):
    """emb_dim -> 256 -> n_languages MLP; deliberately shallow (official LanguageClassifier)."""

    def __init__(self, emb_dim: int, n_languages: int, hidden: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(emb_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_languages)
        )

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.net(e)


class LASEHead(nn.Module):
    """Projection head + GRL + language classifier. ``forward`` returns (embedding, language logits)."""

    def __init__(
        self, d_in: int, n_languages: int, hidden: int = 512, emb_dim: int = 256, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.projection = ProjectionHead(d_in, hidden, emb_dim, dropout)
        self.grl = GradientReversal(0.0)  # lambda starts at 0; the training loop sets it every step
        self.lang_classifier = LanguageClassifier(emb_dim, n_languages, dropout=dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.projection(x)
        return e, self.lang_classifier(self.grl(e))

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Embeddings in eval mode (dropout off)."""
        was_training = self.training
        self.eval()
        out = torch.cat([self.projection(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
        self.train(was_training)
        return out
