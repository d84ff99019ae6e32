"""The bipartite GNN of gnn.py (GNNPolicy), in pure torch (index_add_ instead of torch_geometric).

One graph per forward pass (the official SC batch size is 1), so GraphNorm's per-graph statistics are
statistics over all nodes of one side.
"""

from __future__ import annotations

import torch
from torch import nn

from coco_milp.graph import Graph


def scatter_sum(src: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    return torch.zeros(n, src.shape[1], dtype=src.dtype, device=src.device).index_add_(0, index, src)


def scatter_mean(src: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Mean over incoming messages; nodes without any receive 0 (torch_geometric's "mean" aggregation)."""
    count = torch.zeros(n, dtype=src.dtype, device=src.device).index_add_(
        0, index, torch.ones_like(index, dtype=src.dtype)
    )
    return scatter_sum(src, index, n) / count.clamp(min=1).unsqueeze(1)


class GraphNorm(nn.Module):
    """GraphNorm (Cai et al., 2021) as in torch_geometric: w * (x - a*mean) / sqrt(var + eps) + b, with the
    learnable shift a, over the nodes of one graph."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.mean_scale = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x - self.mean_scale * x.mean(0, keepdim=True)
        var = out.pow(2).mean(0, keepdim=True)
        return self.weight * out / (var + self.eps).sqrt() + self.bias


class BipartiteConv(nn.Module):
    """gnn.py::BipartiteGraphConvolution. For an edge s -> t the message is
    MLP(W_t h_t + W_e e + W_s h_s) (W_t with bias, W_e and W_s without), summed at t; the update is
    MLP([LayerNorm(sum of messages), h_t])."""

    def __init__(self, emb: int = 64):
        super().__init__()
        self.target_lin = nn.Linear(emb, emb)
        self.edge_lin = nn.Linear(1, emb, bias=False)
        self.source_lin = nn.Linear(emb, emb, bias=False)
        self.message_mlp = nn.Sequential(nn.LayerNorm(emb), nn.ReLU(), nn.Linear(emb, emb))
        self.post_norm = nn.LayerNorm(emb)
        self.output = nn.Sequential(nn.Linear(2 * emb, emb), nn.ReLU(), nn.Linear(emb, emb))

    def forward(self, h_src, src_idx, edge_feats, h_tgt, tgt_idx):
        msg = self.message_mlp(
            self.target_lin(h_tgt)[tgt_idx] + self.edge_lin(edge_feats) + self.source_lin(h_src)[src_idx]
        )
        agg = scatter_sum(msg, tgt_idx, h_tgt.shape[0])
        return self.output(torch.cat([self.post_norm(agg), h_tgt], dim=-1))


class IntraConstraintCompetition(nn.Module):
    """The ICC layer (gnn.py::ConstraintNormalization): h_v <- h_v - beta * mean_{c in N(v)} mean_{u in N(c)}
    h_u, a two-hop mean over the real constraints only (edges to the objective node, the last constraint,
    are dropped), with a learnable beta initialised to 1. Variables subtract what their constraint
    neighbours look like on average, so they compete within each constraint."""

    def __init__(self):
        super().__init__()
        self.beta = nn.Parameter(torch.tensor(1.0))

    def forward(self, h_var, cons_idx, var_idx, n_cons):
        keep = cons_idx != n_cons - 1
        c, v = cons_idx[keep], var_idx[keep]
        cons_mean = scatter_mean(h_var[v], c, n_cons)  # mean of the variables in each constraint
        two_hop = scatter_mean(cons_mean[c], v, h_var.shape[0])  # mean over a variable's constraints
        return h_var - self.beta * two_hop


class GNNPolicy(nn.Module):
    """Embeddings (BatchNorm + 2-layer MLP; edge: BatchNorm), `depth` rounds of v->c then c->v convolution,
    [ICC], GraphNorm on both sides; the output MLP reads the concatenation of all rounds' variable
    embeddings ((depth+1)*emb -> 512 -> 128 -> 1) and returns one logit per variable."""

    def __init__(
        self, emb: int = 64, cons_nfeats: int = 4, var_nfeats: int = 6, depth: int = 2, icc: bool = False
    ):
        super().__init__()
        self.cons_embedding = nn.Sequential(
            nn.BatchNorm1d(cons_nfeats),
            nn.Linear(cons_nfeats, emb),
            nn.ReLU(),
            nn.Linear(emb, emb),
            nn.ReLU(),
        )
        self.edge_embedding = nn.BatchNorm1d(1)
        self.var_embedding = nn.Sequential(
            nn.BatchNorm1d(var_nfeats), nn.Linear(var_nfeats, emb), nn.ReLU(), nn.Linear(emb, emb), nn.ReLU()
        )
        self.conv_v_to_c = nn.ModuleList(BipartiteConv(emb) for _ in range(depth))
        self.conv_c_to_v = nn.ModuleList(BipartiteConv(emb) for _ in range(depth))
        self.norm_c = nn.ModuleList(GraphNorm(emb) for _ in range(depth))
        self.norm_v = nn.ModuleList(GraphNorm(emb) for _ in range(depth))
        self.icc = nn.ModuleList(IntraConstraintCompetition() for _ in range(depth)) if icc else None
        self.head = nn.Sequential(
            nn.Linear((depth + 1) * emb, 512), nn.ReLU(), nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, 1)
        )

    def forward(self, g: Graph) -> torch.Tensor:
        c_idx, v_idx = g.edge_index
        h_c = self.cons_embedding(g.cons_feats)
        e = self.edge_embedding(g.edge_feats)
        h_v = self.var_embedding(g.var_feats)
        outs = [h_v]
        for i in range(len(self.conv_v_to_c)):
            h_c = self.conv_v_to_c[i](h_v, v_idx, e, h_c, c_idx)
            h_v = self.conv_c_to_v[i](h_c, c_idx, e, h_v, v_idx)
            if self.icc is not None:
                h_v = self.icc[i](h_v, c_idx, v_idx, g.n_cons)
            h_c = self.norm_c[i](h_c)
            h_v = self.norm_v[i](h_v)
            outs.append(h_v)
        return self.head(torch.cat(outs, dim=-1)).squeeze(-1)
