"""RePRI classifier: logits, loss terms, initialisation, the SGD step, pi updates and the oracle guard."""

import math

import pytest
import torch
import torch.nn.functional as F
from repri.classifier import (
    RePRIConfig,
    cosine_logits,
    one_hot,
    predict,
    probas,
    query_terms,
    run_repri,
    soft_proportion,
    support_ce,
    true_proportion,
)

from xentlab.testing import assert_close, check_gradients


def _task(t=3, shots=2, c=5, h=4, w=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    fs = F.normalize(torch.rand(t, shots, c, h, w, generator=g), dim=2)
    fq = F.normalize(torch.rand(t, 1, c, h, w, generator=g), dim=2)
    gs = (torch.rand(t, shots, h, w, generator=g) < 0.4).long()
    gs[:, :, 0, 0] = 1  # at least one foreground pixel per task
    vq = torch.ones(t, 1, h, w)
    return fs, fq, gs, vq


def test_cosine_logits_match_loop_reference():
    fs, _, _, _ = _task()
    proto = torch.randn(3, 5, dtype=torch.float64)
    f = fs.double()
    got = cosine_logits(f, proto, 20.0)
    ref = torch.empty(3, 2, 4, 4, dtype=torch.float64)
    for t in range(3):
        for s in range(2):
            for i in range(4):
                for j in range(4):
                    v = f[t, s, :, i, j]
                    ref[t, s, i, j] = 20.0 * (v @ proto[t]) / (v.norm() * proto[t].norm())
    assert_close(got, ref, atol=1e-9, name="tau*cos")


def test_loss_terms_hand_values():
    # one task, one shot, two pixels with p_fg = 0.8 and 0.4; pi = (0.5, 0.5); support labels fg, bg
    p_fg = torch.tensor([0.8, 0.4], dtype=torch.float64).view(1, 1, 1, 1, 2)
    p = torch.cat([1 - p_fg, p_fg], 2)
    valid = torch.ones(1, 1, 1, 2, dtype=torch.float64)
    target = one_hot(torch.tensor([[[[1, 0]]]]))
    ce = support_ce(p, valid, target.double())
    assert_close(ce, torch.tensor([-(math.log(0.8) + math.log(0.6)) / 2], dtype=torch.float64), atol=1e-9)
    kl, ent, marginal = query_terms(p, valid, torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    # p_hat = (0.4, 0.6); KL = 0.4 log 0.8 + 0.6 log 1.2; H = mean of the two binary entropies
    assert_close(marginal, torch.tensor([[0.4, 0.6]], dtype=torch.float64), atol=1e-12)
    assert_close(
        kl, torch.tensor([0.4 * math.log(0.8) + 0.6 * math.log(1.2)], dtype=torch.float64), atol=1e-8
    )

    def h(q):
        return -(q * math.log(q) + (1 - q) * math.log(1 - q))

    assert_close(ent, torch.tensor([(h(0.8) + h(0.4)) / 2], dtype=torch.float64), atol=1e-8)


def test_loss_terms_gradcheck():
    valid = torch.ones(2, 1, 3, 3)
    pi = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
    target = one_hot(torch.randint(0, 2, (2, 1, 3, 3)))

    def total(logits, bias):
        p = probas(logits, bias)
        kl, ent, _ = query_terms(p, valid.double(), pi.double())
        return support_ce(p, valid.double(), target.double()) + kl + ent

    check_gradients(total, torch.randn(2, 1, 3, 3), torch.randn(2))


def test_initialisation_prototype_bias_and_soft_pi():
    fs, fq, gs, vq = _task()
    res = run_repri(fs, fq, gs, vq, RePRIConfig(adapt_iter=0))
    fg = (gs == 1).unsqueeze(2).float()
    proto = (fs * fg).sum(dim=(1, 3, 4)) / fg.sum(dim=(1, 3, 4))
    assert_close(res.prototype, proto, atol=1e-6, name="masked mean")
    bias = cosine_logits(fq, proto, 20.0).mean(dim=(1, 2, 3))
    assert_close(res.bias, bias, atol=1e-5, name="bias = mean query logit")
    pi = soft_proportion(probas(cosine_logits(fq, proto, 20.0), bias), vq)
    assert_close(res.pi_init, pi, atol=1e-5)
    assert torch.equal(res.pi_init, res.pi_final)


def test_one_sgd_step_matches_float64_reference():
    fs, fq, gs, vq = _task(t=2)
    cfg = RePRIConfig(adapt_iter=2)  # range(1, 2): exactly one step
    res = run_repri(fs, fq, gs, vq, cfg)
    init = run_repri(fs, fq, gs, vq, RePRIConfig(adapt_iter=0))
    # reference: the loss written out directly in float64, gradient by autograd, one SGD step
    w = init.prototype.double().requires_grad_()
    b = init.bias.double().requires_grad_()
    shots = fs.shape[1]
    ps = torch.sigmoid(cosine_logits(fs.double(), w, 20.0) - b.view(-1, 1, 1, 1))
    pq = torch.sigmoid(cosine_logits(fq.double(), w, 20.0) - b.view(-1, 1, 1, 1))
    y = gs.double()
    ce = -(y * torch.log(ps + 1e-10) + (1 - y) * torch.log(1 - ps + 1e-10)).mean(dim=(1, 2, 3))
    m_fg = pq.mean(dim=(1, 2, 3))
    pi = init.pi_init.double()
    kl = (1 - m_fg) * torch.log((1 - m_fg) / (pi[:, 0] + 1e-10)) + m_fg * torch.log(m_fg / (pi[:, 1] + 1e-10))
    ent = -(pq * torch.log(pq + 1e-10) + (1 - pq) * torch.log(1 - pq + 1e-10)).mean(dim=(1, 2, 3))
    (ce + kl / shots + ent / shots).sum().backward()
    assert_close(res.prototype.double(), (w - 0.025 * w.grad).detach(), atol=1e-5, name="w after 1 step")
    assert_close(res.bias.double(), (b - 0.025 * b.grad).detach(), atol=1e-5, name="b after 1 step")


def test_pi_reestimated_at_iteration_10_only_when_kl_is_on():
    fs, fq, gs, vq = _task()
    # adapt_iter=10: steps at iterations 1..9; after the step at iteration 9, 9 + 1 = 10 triggers the update
    res = run_repri(fs, fq, gs, vq, RePRIConfig(adapt_iter=10))
    expected = soft_proportion(probas(cosine_logits(fq, res.prototype, 20.0), res.bias), vq)
    assert_close(res.pi_final, expected, atol=1e-5, name="pi re-estimated from the final classifier")
    assert not torch.allclose(res.pi_final, res.pi_init)
    early = run_repri(fs, fq, gs, vq, RePRIConfig(adapt_iter=9))  # the trigger is never reached
    assert torch.equal(early.pi_final, early.pi_init)
    ce_only = run_repri(fs, fq, gs, vq, RePRIConfig(adapt_iter=20, weights=(1.0, 0.0, 0.0)))
    assert torch.equal(ce_only.pi_final, ce_only.pi_init)  # official: no update when l2 == 0


def test_oracle_uses_true_pi_and_guards_against_leaks():
    fs, fq, gs, vq = _task()
    gq = (torch.rand(3, 1, 4, 4) < 0.3).long()
    pi_true = true_proportion(gq)
    assert_close(pi_true[:, 1], gq.float().mean(dim=(1, 2, 3)), atol=1e-7)
    res = run_repri(fs, fq, gs, vq, RePRIConfig(adapt_iter=20, fb_type="oracle"), pi_oracle=pi_true)
    assert torch.equal(res.pi_final, pi_true) and torch.equal(res.pi_init, pi_true)
    with pytest.raises(ValueError, match="must not receive"):
        run_repri(fs, fq, gs, vq, RePRIConfig(), pi_oracle=pi_true)
    with pytest.raises(ValueError, match="needs pi_oracle"):
        run_repri(fs, fq, gs, vq, RePRIConfig(fb_type="oracle"))
    with pytest.raises(ValueError, match="fb_type"):
        RePRIConfig(fb_type="hard")


def test_predict_is_threshold_of_upsampled_logits():
    fs, fq, gs, vq = _task()
    res = run_repri(fs, fq, gs, vq, RePRIConfig(adapt_iter=0))
    pred = predict(fq, res, 20.0, (16, 16))
    up = F.interpolate(
        cosine_logits(fq, res.prototype, 20.0), size=(16, 16), mode="bilinear", align_corners=True
    )
    p = probas(up, res.bias)
    assert torch.equal(pred, p.argmax(2)[:, 0] == 1)  # argmax over [bg, fg]
    assert pred.shape == (3, 16, 16)


def test_tasks_are_independent():
    """Batching tasks changes nothing: each task's parameters only see its own loss."""
    fs, fq, gs, vq = _task(t=4)
    both = run_repri(fs, fq, gs, vq, RePRIConfig(adapt_iter=15))
    one = run_repri(fs[1:2], fq[1:2], gs[1:2], vq[1:2], RePRIConfig(adapt_iter=15))
    assert_close(both.prototype[1:2], one.prototype, atol=1e-5)
    assert_close(both.bias[1:2], one.bias, atol=1e-5)
