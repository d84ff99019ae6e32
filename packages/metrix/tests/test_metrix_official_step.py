"""Second-reader audit: one training step's loss against a literal float64 re-enactment of the official
embed_metrix_contrastive / feature_metrix_contrastive (train.py, mixup/utils.py, mixup/losses.py,
net/feature_resnet.py): the repeated index lists, three forward passes in feature mode, LpDistance's
re-normalisation, AvgNonZero per term, and the weights 0.4 / 0.3 (embed) and 0.4 / 0.4 (feature)."""

import pytest
import torch
import torch.nn.functional as F
from metrix.experiment import Embedder, RunConfig, metrix_step_loss


def _pairs(y):
    # pytorch-metric-learning get_all_pairs_indices: row-major torch.where over the label-match matrix
    same = y[:, None] == y[None, :]
    a1, p = torch.where(same & ~torch.eye(len(y), dtype=torch.bool))
    a2, n = torch.where(~same)
    return a1, p, a2, n


def _official_lists(y, scheme):
    """(anchor, x, neg) lists as the official code builds them (with repetitions)."""
    a1, p, a2, n = _pairs(y)
    if scheme == 0:  # *_posneg_pair_mixup_for_pos_anchor
        out = []
        for anchor in a1.tolist():
            idxs = torch.where(a2 == anchor)[0]
            first = p[torch.where(a1 == anchor)[0]][0].item()
            out += [(anchor, first, n[i].item()) for i in idxs.tolist()]
        return out
    has_pos = set(a1.tolist())  # *_neg_pair_mixup_without_posanchor
    return [(a, a, m) for a, m in zip(a2.tolist(), n.tolist()) if a not in has_pos]


def _lp(u, v):  # LpDistance(): both sides L2-normalised, Euclidean
    return (F.normalize(u, dim=1) - F.normalize(v, dim=1)).norm(dim=1)


def _avg_nonzero(v):
    return v[v > 0].mean() if (v > 0).any() else v.sum() * 0


def _official_loss(model, x, y, mode, scheme, lam):
    out_clean = model(x)
    # ContrastiveLoss(neg_margin=0.5): AvgNonZero(relu(d_pos)) + AvgNonZero(relu(0.5 - d_neg))
    a1, p, a2, n = _pairs(y)
    clean = _avg_nonzero(F.relu(_lp(out_clean[a1], out_clean[p]))) + _avg_nonzero(
        F.relu(0.5 - _lp(out_clean[a2], out_clean[n]))
    )
    lists = _official_lists(y, scheme)
    a, xi, ng = (torch.tensor(c) for c in zip(*lists))
    if mode == "embed":  # mixup_data on the (normalised) embeddings
        anchor, mixed = out_clean[a], lam * out_clean[xi] + (1 - lam) * out_clean[ng]
        w = 0.4 if scheme == 0 else 0.3
    else:  # feature_resnet.forward: two more passes, layer4 maps indexed / mixed, then GAP + GMP, linear, norm
        anchor = model.head(model.trunk(x)[a])
        fmap = model.trunk(x)
        mixed = model.head(lam * fmap[xi] + (1 - lam) * fmap[ng])
        w = 0.4
    d = _lp(anchor, mixed)  # torch.diagonal(distance(anchor, mixed))
    mix = _avg_nonzero(lam * F.relu(d)) + _avg_nonzero((1 - lam) * F.relu(0.5 - d))
    return clean + w * mix


@pytest.mark.parametrize("mode", ["embed", "feature"])
@pytest.mark.parametrize("scheme", [0, 1])
def test_step_loss_matches_official_reenactment(mode, scheme):
    torch.manual_seed(0)
    model = Embedder(4, 6).double()  # train mode: every pass sees the same batch, so BN statistics agree
    x = torch.rand(12, 3, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 0, 0, 1, 1, 2, 3, 4, 4, 5, 6, 6])  # items 5, 6, 9 have no positive
    lam = 0.37
    ours = metrix_step_loss(model, x, y, RunConfig(mode=mode), scheme, lam)
    ref = _official_loss(model, x, y, mode, scheme, lam)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    # and the gradients agree (the mixed term is not detached anywhere in the official code)
    g_ours = torch.autograd.grad(ours, list(model.parameters()))
    g_ref = torch.autograd.grad(_official_loss(model, x, y, mode, scheme, lam), list(model.parameters()))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
