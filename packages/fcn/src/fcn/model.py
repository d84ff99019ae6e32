"""FCN (arXiv 2407.13349, formerly DCNv3): cross layers with Self-Mask, ECN, LCN, the fused model.

Notation follows the paper (Sec. 3): x_0 is the concatenated field embedding (d = F * emb_dim),
x_l the input of cross layer l.
"""

from __future__ import annotations

import torch
from torch import nn


class SelfMaskCrossLayer(nn.Module):
    """One cross layer (paper Eq. for ECN/LCN with Self-Mask).

    H = W_l x_l (W_l: d/2 x d, no bias); M = ReLU(LayerNorm(H)); H' = [H, H * M];
    out = anchor * (H' + b_l) + x_l, b_l ~ U(0, 1) as in the official code; dropout on the output.
    ECN uses anchor = x_l (order doubles per layer), LCN anchor = x_0 (order grows by one).
    ``self_mask=False`` gives the official-repo FCNv1 variant H' = [H, LayerNorm(H)].
    """

    def __init__(self, dim: int, dropout: float = 0.0, self_mask: bool = True):
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"cross-layer dim must be even and >= 2 (H has d/2 rows), got {dim}")
        self.w = nn.Linear(dim, dim // 2, bias=False)
        self.norm = nn.LayerNorm(dim // 2)
        self.b = nn.Parameter(torch.rand(dim))  # U(0,1) init (official code: nn.init.uniform_)
        self.dropout = nn.Dropout(dropout)
        self.self_mask = self_mask

    def forward(self, x: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
        h = self.w(x)
        if self.self_mask:
            second = h * torch.relu(self.norm(h))  # Self-Mask: zeroes ~half of H
        else:
            second = self.norm(h)
        h_full = torch.cat([h, second], dim=-1)
        return self.dropout(anchor * (h_full + self.b) + x)


class CrossNetwork(nn.Module):
    """A stack of cross layers plus a linear head returning one logit per row.

    kind="exponential" (ECN): x_{l+1} = x_l * (H'_l + b_l) + x_l.
    kind="linear" (LCN): x_{l+1} = x_0 * (H'_l + b_l) + x_l.
    """

    def __init__(self, dim: int, num_layers: int, kind: str, dropout: float = 0.0, self_mask: bool = True):
        super().__init__()
        if kind not in ("exponential", "linear"):
            raise ValueError(f"kind must be 'exponential' or 'linear', got {kind!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.kind = kind
        self.layers = nn.ModuleList(SelfMaskCrossLayer(dim, dropout, self_mask) for _ in range(num_layers))
        self.fc = nn.Linear(dim, 1)

    def features(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for layer in self.layers:
            x = layer(x, x if self.kind == "exponential" else x0)
        return x

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x0)).squeeze(-1)


class FieldEmbedding(nn.Module):
    """One embedding table per categorical field; output is x_0 (B, F*emb_dim).

    ``layout="field"`` (the class default; what protocol v1-v4 used): field-contiguous
    [e_1, ..., e_F]. ``layout="halves"``: the official ``MultiHeadFeatureEmbedding`` with one head
    (src/ECN.py, src/FCNv1.py): every e_f is split in two halves and x_0 = [e_1[:D/2], ..., e_F[:D/2],
    e_1[D/2:], ..., e_F[D/2:]]. This is NOT a harmless reordering for the cross networks: a cross layer
    multiplies coordinate j by H_j and coordinate j + d/2 by (H * M)_j, so the official layout pairs the two
    halves of one field, the field layout pairs fields f and f + F/2 (README "Protocol v5").
    For the DNN and DCNv2 baselines the two layouts are the same model (a permutation of a dense input)."""

    LAYOUTS = ("field", "halves")

    def __init__(self, vocab_sizes: list[int], emb_dim: int, layout: str = "field"):
        super().__init__()
        if layout not in self.LAYOUTS:
            raise ValueError(f"layout must be one of {self.LAYOUTS}, got {layout!r}")
        if layout == "halves" and emb_dim % 2:
            raise ValueError(
                f"layout 'halves' splits each embedding in two: emb_dim must be even, got {emb_dim}"
            )
        self.layout = layout
        self.tables = nn.ModuleList(nn.Embedding(v, emb_dim) for v in vocab_sizes)
        for t in self.tables:
            nn.init.normal_(t.weight, std=1e-4)  # FuxiCTR default embedding init
        self.out_dim = len(vocab_sizes) * emb_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != len(self.tables):
            raise ValueError(f"expected (batch, {len(self.tables)}) field indices, got {tuple(x.shape)}")
        if self.layout == "field":
            return torch.cat([t(x[:, i]) for i, t in enumerate(self.tables)], dim=-1)
        e = torch.stack([t(x[:, i]) for i, t in enumerate(self.tables)], dim=1)  # B x F x D
        first, second = torch.tensor_split(e, 2, dim=-1)
        return torch.cat([first.flatten(1), second.flatten(1)], dim=-1)


def fuxictr_reset_parameters(model: nn.Module) -> nn.Module:
    """FuxiCTR ``BaseModel.reset_parameters`` (run by the official model's __init__): every nn.Linear gets
    xavier_normal_ weights and a zero bias. Embedding tables (N(0, 1e-4^2)) and the cross layers' b_l
    (U(0, 1)) are not nn.Linear and keep their own init; LayerNorm keeps (1, 0)."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


class FCN(nn.Module):
    """ECN and LCN in parallel on the same x_0; fused logit = (logit_D + logit_S) / 2 (paper Sec. 3.4).

    forward returns (fused_logit, logit_D, logit_S)."""

    def __init__(self, vocab_sizes, emb_dim=16, ecn_layers=3, lcn_layers=4, ecn_dropout=0.1, lcn_dropout=0.2,
                 self_mask=True, embedding_layout="field"):  # fmt: skip
        super().__init__()
        self.embedding = FieldEmbedding(vocab_sizes, emb_dim, embedding_layout)
        d = self.embedding.out_dim
        self.ecn = CrossNetwork(d, ecn_layers, "exponential", ecn_dropout, self_mask)
        self.lcn = CrossNetwork(d, lcn_layers, "linear", lcn_dropout, self_mask)

    def forward(self, x: torch.Tensor):
        x0 = self.embedding(x)
        logit_d, logit_s = self.ecn(x0), self.lcn(x0)
        return (logit_d + logit_s) / 2, logit_d, logit_s


class SingleCross(nn.Module):
    """ECN-only or LCN-only model (the paper's single-network ablations)."""

    def __init__(self, vocab_sizes, kind, emb_dim=16, num_layers=3, dropout=0.1, self_mask=True,
                 embedding_layout="field"):  # fmt: skip
        super().__init__()
        self.embedding = FieldEmbedding(vocab_sizes, emb_dim, embedding_layout)
        self.net = CrossNetwork(self.embedding.out_dim, num_layers, kind, dropout, self_mask)

    def forward(self, x):
        return self.net(self.embedding(x))


class LogisticRegression(nn.Module):
    """LR baseline: sum of per-field, per-value scalar weights plus a bias."""

    def __init__(self, vocab_sizes):
        super().__init__()
        self.embedding = FieldEmbedding(vocab_sizes, 1)
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.embedding(x).sum(-1) + self.bias


def mlp(in_dim: int, hidden: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.ReLU(), nn.Dropout(dropout)]
        in_dim = h
    return nn.Sequential(*layers)


class DNN(nn.Module):
    """DNN baseline: embeddings -> ReLU MLP -> logit."""

    def __init__(self, vocab_sizes, emb_dim=16, hidden=(400, 400, 400), dropout=0.1):
        super().__init__()
        self.embedding = FieldEmbedding(vocab_sizes, emb_dim)
        self.mlp = mlp(self.embedding.out_dim, list(hidden), dropout)
        self.fc = nn.Linear(hidden[-1], 1)

    def forward(self, x):
        return self.fc(self.mlp(self.embedding(x))).squeeze(-1)


class DCNv2(nn.Module):
    """DCNv2 baseline (Wang et al. 2021), parallel form: full-rank cross x_{l+1} = x_0 * (W x_l + b) + x_l
    next to an MLP; the two outputs are concatenated into the logit layer."""

    def __init__(self, vocab_sizes, emb_dim=16, cross_layers=3, hidden=(400, 400, 400), dropout=0.1):
        super().__init__()
        self.embedding = FieldEmbedding(vocab_sizes, emb_dim)
        d = self.embedding.out_dim
        self.cross = nn.ModuleList(nn.Linear(d, d) for _ in range(cross_layers))
        self.mlp = mlp(d, list(hidden), dropout)
        self.fc = nn.Linear(d + hidden[-1], 1)

    def forward(self, x):
        x0 = self.embedding(x)
        xc = x0
        for w in self.cross:
            xc = x0 * w(xc) + xc
        return self.fc(torch.cat([xc, self.mlp(x0)], dim=-1)).squeeze(-1)
