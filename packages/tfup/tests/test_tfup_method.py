"""TFUP pieces vs direct float64 references and hand derivations."""

import math

import pytest
import torch
import torch.nn.functional as F
from tfup.method import (
    ImageAdapter,
    TextAdapter,
    cache_logits,
    cache_shots,
    cosine_lr,
    marginal_loss,
    msm_similarity,
    select_cache,
    tfup_logits,
)

from xentlab.testing import assert_close


def _data(n=40, c=4, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(
        c, d, generator=g, dtype=torch.float64
    )


def test_cache_shots_clamp():
    assert cache_shots(2000, 8) == 16  # floor(75) capped at 16
    assert cache_shots(200, 10) == 9  # floor(6) raised to 9
    assert cache_shots(400, 10) == 12
    assert cache_shots(1500, 8, 0.75, hi=None) == 140


def test_select_cache_matches_loop_reference():
    f, w = _data()
    idx, lab = select_cache(f, w, 3)
    p = F.softmax(10 * F.normalize(f, dim=-1) @ F.normalize(w, dim=-1).t(), dim=1)
    for c in range(4):
        cand = p[:, c].argsort(descending=True)[:6]
        pc = p[cand]
        # official loop: score_j = sum over the m x C matrix of p_j * log(p_j / p_k)
        score = torch.tensor([(pc[j] * torch.log(pc[j] / pc)).sum() for j in range(6)])
        assert idx[3 * c : 3 * c + 3].tolist() == cand[score.argsort()[:3]].tolist()
        assert (lab[3 * c : 3 * c + 3] == c).all()


def test_msm_similarity_reference_and_range():
    f, w = _data()
    keys = f[:10] + 0.1
    sim = msm_similarity(keys, f, w)
    pk = F.softmax(10 * F.normalize(keys, dim=-1) @ F.normalize(w, dim=-1).t(), dim=1)
    pt = F.softmax(10 * F.normalize(f, dim=-1) @ F.normalize(w, dim=-1).t(), dim=1)
    kl = torch.stack([(pt[i] * torch.log(pt[i] / pk)).sum(1) for i in range(len(pt))])
    z = (kl - kl.mean(1, keepdim=True)) / kl.std(1, keepdim=True)
    ref = 2 * (
        1
        - (z - z.min(1, keepdim=True).values)
        / (z.max(1, keepdim=True).values - z.min(1, keepdim=True).values)
    )
    assert_close(sim, ref, name="msm")
    assert torch.allclose(sim.max(1).values, torch.full((40,), 2.0, dtype=torch.float64))
    assert torch.allclose(sim.min(1).values, torch.zeros(40, dtype=torch.float64))


def test_tfup_logits_cosine_form_by_hand():
    # one test vector equal to the single cache key: R = 1, exp(-beta(1 - 1)) = 1 -> cache logit = value
    f = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    keys = torch.tensor([[2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    values = torch.eye(2, dtype=torch.float64)
    cl = cache_logits(f, w, keys, values, beta=1.0, msm=False)
    assert_close(cl, torch.tensor([[1.0, math.exp(-1.0)]], dtype=torch.float64), name="cache")
    out = tfup_logits(f, w, keys, values, alpha=0.3, beta=1.0, msm=False)
    assert_close(out, torch.tensor([[100 + 0.3, 0.3 * math.exp(-1.0)]], dtype=torch.float64), name="tfup")


def test_marginal_loss_is_minus_entropy():
    uniform = torch.zeros(5, 4, dtype=torch.float64)
    # mean softmax is uniform, m_i = 1/4: sum_i m_i log(m_i + 1e-6) = log(1/4 + 1e-6)
    assert_close(marginal_loss(uniform), torch.tensor(math.log(0.25 + 1e-6), dtype=torch.float64))
    peaked = torch.tensor([[20.0, 0, 0, 0]], dtype=torch.float64).repeat(3, 1)
    assert marginal_loss(peaked) > marginal_loss(uniform)


def test_adapters_start_at_identity_directions():
    w = torch.randn(3, 8)
    assert_close(TextAdapter(w)(), F.normalize(w, dim=-1), name="text at init (R = 0)")
    a = ImageAdapter(8)
    torch.nn.init.zeros_(a.fc[2].weight)
    f = torch.randn(5, 8)
    assert_close(a(f), F.normalize(f, dim=-1), name="image adapter with zero output")


def test_cosine_lr_matches_torch():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.012)
    sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10)
    for s in range(1, 8):
        opt.step()
        sch.step()
        assert sch.get_last_lr()[0] == pytest.approx(cosine_lr(s, 0.012, 10), rel=1e-9)
