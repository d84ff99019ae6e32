"""The EMO loss against float64 hand computations, the transport-cost identity, gradients, stop-gradient
and the frozen cost embedding."""

from __future__ import annotations

import math

import pytest
import torch
from emo.loss import emo_cost, emo_loss, make_cost_embedding, mle_loss

from xentlab.models.small_decoder import DecoderLM, LMShape
from xentlab.testing import assert_close, check_gradients


def _toy():
    # 3 words in 2-d: e0 = (1, 0), e1 = (1, 1) (a "synonym" of e0 at 45 degrees), e2 = (-2, 0) (opposite)
    e = torch.tensor([[1.0, 0.0], [1.0, 1.0], [-2.0, 0.0]], dtype=torch.float64)
    logits = torch.tensor([[0.0, math.log(2.0), math.log(3.0)]], dtype=torch.float64)  # q = (1, 2, 3) / 6
    return e, logits


def test_hand_computation_tiny_vocab():
    e, logits = _toy()
    labels = torch.tensor([0])
    # costs from y = 0: 1 - cos = (0, 1 - 1/sqrt 2, 2); EMO = sum q_v c_v = (2 (1 - 1/sqrt2) + 3 * 2) / 6
    emo = (2 * (1 - 1 / math.sqrt(2)) + 6) / 6
    ce = -math.log(1 / 6)
    # L = 0.5 [CE + (CE / EMO) EMO] = CE for every token (the value; the gradients differ)
    assert_close(emo_cost(logits, labels, e), torch.tensor([emo], dtype=torch.float64), atol=1e-12)
    assert_close(
        emo_loss(logits, labels, e), torch.tensor(0.5 * (ce + ce / (emo + 1e-10) * emo), dtype=torch.float64)
    )


def test_emo_is_expected_transport_cost():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 11, generator=g, dtype=torch.float64)
    labels = torch.randint(11, (7,), generator=g)
    e = torch.randn(11, 5, generator=g, dtype=torch.float64)
    en = e / e.norm(dim=1, keepdim=True)
    cost = 1 - en @ en.T  # C(i, j) = 1 - cos(e_i, e_j)
    expected = (torch.softmax(logits, -1) * cost[labels]).sum(-1)
    assert_close(emo_cost(logits, labels, e), expected, atol=1e-12)


def test_ignore_index_and_masked_mean():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 6, generator=g, dtype=torch.float64)
    labels = torch.randint(6, (2, 4), generator=g)
    e = torch.randn(6, 3, generator=g, dtype=torch.float64)
    masked = labels.clone()
    masked[0, 1] = masked[1, 3] = -100
    keep = masked != -100
    per = emo_loss(logits, masked, e, reduction="none")
    assert (per[~keep] == 0).all()
    assert_close(emo_loss(logits, masked, e), emo_loss(logits[keep], labels[keep], e))
    assert_close(emo_loss(logits, torch.full_like(labels, -100), e), torch.tensor(0.0, dtype=torch.float64))


def test_gradcheck():
    # Finite differences see only the forward VALUE, and with the stop-gradient the value of L_t is
    # 0.5 [CE + (CE / EMO) EMO] = CE, so gradcheck applies to the differentiable pieces: the EMO term
    # (here) and the composition rule (test_stop_gradient_gives_ce_scale).
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(5, 7, generator=g)
    labels = torch.tensor([0, 3, -100, 6, 2])
    e = torch.randn(7, 4, generator=g, dtype=torch.float64)
    assert check_gradients(lambda z: emo_cost(z, labels, e), logits)


def test_stop_gradient_gives_ce_scale():
    # With r = sg(CE / EMO): dL/dz = 0.5 [dCE/dz + (CE / EMO) dEMO/dz]. The EMO term's gradient is
    # its own gradient rescaled by CE / EMO (no gradient through the ratio), so its magnitude is CE's.
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(1, 9, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([4])
    e = torch.randn(9, 6, generator=g, dtype=torch.float64)
    (grad_total,) = torch.autograd.grad(emo_loss(logits, labels, e), logits)
    (grad_ce,) = torch.autograd.grad(mle_loss(logits, labels), logits)
    (grad_emo,) = torch.autograd.grad(emo_cost(logits, labels, e).sum(), logits)
    ce = mle_loss(logits, labels).detach()
    emo = emo_cost(logits, labels, e).detach()
    assert_close(grad_total, 0.5 * (grad_ce + (ce / (emo + 1e-10)) * grad_emo), atol=1e-12)
    # and the gradient is NOT that of 0.5 (CE + CE) (i.e. the ratio is not a constant 1 in backward)
    assert (grad_total - grad_ce).abs().max() > 1e-6


def test_cost_embedding_gets_no_gradient():
    e = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    logits = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    emo_loss(logits, torch.tensor([0, 1, 2, 3]), e).backward()
    assert e.grad is None


def test_cost_embedding_is_loaded_lm_head_and_stays_frozen():
    cfg = LMShape(vocab_size=12, hidden=8, layers=1, heads=2, max_positions=8)
    torch.manual_seed(0)
    pretrained = DecoderLM(cfg)
    with torch.no_grad():
        pretrained.embed.weight.mul_(3.0)  # "pretrained" weights differ from a fresh init
    model = DecoderLM(cfg)  # fresh random init, as in GPT2MIXModel.__init__
    model.load_state_dict(pretrained.state_dict())
    cost = make_cost_embedding(model.embed.weight)  # taken AFTER loading
    assert torch.equal(cost, pretrained.embed.weight)
    before = cost.clone()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    x = torch.randint(12, (4, 8))
    emo_loss(model(x[:, :-1]), x[:, 1:], cost).backward()
    opt.step()
    assert torch.equal(cost, before)  # frozen
    assert not torch.equal(model.embed.weight, before)  # while the LM head moved
    assert not cost.requires_grad


def test_clear_errors():
    e = torch.randn(5, 3)
    with pytest.raises(ValueError, match="labels shape"):
        emo_loss(torch.randn(4, 5), torch.zeros(3, dtype=torch.long), e)
    with pytest.raises(ValueError, match="cost_embedding must be"):
        emo_loss(torch.randn(4, 5), torch.zeros(4, dtype=torch.long), torch.randn(6, 3))
    with pytest.raises(ValueError, match="labels must be in"):
        emo_loss(torch.randn(4, 5), torch.tensor([0, 1, 5, 2]), e)
    with pytest.raises(TypeError, match="integer"):
        emo_loss(torch.randn(4, 5), torch.zeros(4), e)
    with pytest.raises(ValueError, match="all-zero row"):
        emo_loss(torch.randn(4, 5), torch.zeros(4, dtype=torch.long), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="reduction"):
        emo_loss(torch.randn(4, 5), torch.zeros(4, dtype=torch.long), e, reduction="sum")


def test_ratio_cap_hand_computation():
    # The capped weight of DRSY/EMO emo_patch.py (commit 54a7880) and PyPI EMOLoss mode=1:
    # L = 0.5 [CE + min(sg(CE / (EMO + 1e-10)), cap) EMO]. Toy token (see _toy): CE = ln 6 = 1.792,
    # EMO = (2 (1 - 1/sqrt 2) + 6) / 6 = 1.0976, so CE / EMO = 1.632: a cap of 1 binds, a cap of 3 does not.
    e, logits = _toy()
    labels = torch.tensor([0])
    emo = (2 * (1 - 1 / math.sqrt(2)) + 6) / 6
    ce = math.log(6.0)
    assert_close(
        emo_loss(logits, labels, e, ratio_cap=1.0), torch.tensor(0.5 * (ce + emo), dtype=torch.float64)
    )
    assert_close(emo_loss(logits, labels, e, ratio_cap=3.0), emo_loss(logits, labels, e))
    # gradient with a binding cap: 0.5 [dCE/dz + cap dEMO/dz]
    z = logits.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(emo_loss(z, labels, e, ratio_cap=1.0), z)
    (grad_ce,) = torch.autograd.grad(mle_loss(z, labels), z)
    (grad_emo,) = torch.autograd.grad(emo_cost(z, labels, e).sum(), z)
    assert_close(grad, 0.5 * (grad_ce + 1.0 * grad_emo), atol=1e-12)
    with pytest.raises(ValueError, match="ratio_cap"):
        emo_loss(logits, labels, e, ratio_cap=0.0)


def test_mle_loss_honours_a_custom_ignore_index():
    # mle_loss must skip the positions marked with ITS ignore_index, not torch's default -100:
    # the token-mean CE over the kept positions, computed by hand from log_softmax (float64).
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)
    labels = torch.tensor([[1, -1, 4], [0, 2, -1]])
    keep = labels != -1
    logp = torch.log_softmax(logits[keep], -1)
    expected = -logp.gather(-1, labels[keep].unsqueeze(-1)).mean()
    assert_close(mle_loss(logits, labels, ignore_index=-1), expected, atol=1e-12)
    # and emo_loss with the same custom ignore_index equals it on the kept tokens only
    e = torch.randn(5, 3, generator=g, dtype=torch.float64)
    assert_close(emo_loss(logits, labels, e, ignore_index=-1), emo_loss(logits[keep], labels[keep], e))


def test_ignored_positions_use_label_zero_in_emo_cost():
    # emo_cost's docstring: ignored positions use label 0 (official code: labels[labels == -100] = 0).
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(3, 4, generator=g, dtype=torch.float64)
    e = torch.randn(4, 2, generator=g, dtype=torch.float64)
    got = emo_cost(logits, torch.tensor([2, -100, 3]), e)
    assert_close(got, emo_cost(logits, torch.tensor([2, 0, 3]), e), atol=1e-12)


def test_make_cost_embedding_rejects_a_non_matrix():
    with pytest.raises(ValueError, match="vocab, hidden"):
        make_cost_embedding(torch.randn(5))
