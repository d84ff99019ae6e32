"""xentlab.lm.preference: DPO / IPO against float64 hand derivations and against trl's DPOTrainer loss."""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from xentlab.lm.preference import dpo_loss, ipo_loss, npo_loss
from xentlab.testing import assert_close, check_gradients


def _logps(n: int = 6, seed: int = 0, dtype=torch.float64) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [-(torch.rand(n, generator=g, dtype=dtype) * 20 + 1) for _ in range(4)]


def test_dpo_hand_values():
    # One pair: policy (-10, -12), reference (-11, -11): h = (-10 + 11) - (-12 + 11) = 2.
    # beta = 0.5: loss = -log sigmoid(1) = log(1 + e^-1) = 0.31326168751822286;
    # implicit rewards 0.5 * 1 = 0.5 (chosen) and 0.5 * -1 = -0.5 (rejected).
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    out = dpo_loss(t(-10.0), t(-12.0), t(-11.0), t(-11.0), beta=0.5)
    assert_close(out.losses, torch.tensor([math.log1p(math.exp(-1))], dtype=torch.float64))
    assert float(out.chosen_rewards) == 0.5 and float(out.rejected_rewards) == -0.5


def test_dpo_equal_policy_and_reference_is_log2():
    # policy == reference: h = 0 and the loss is log 2 for every pair, whatever beta.
    pc, pr, _, _ = _logps()
    out = dpo_loss(pc, pr, pc.clone(), pr.clone(), beta=0.3)
    assert_close(out.losses, torch.full_like(pc, math.log(2)))
    assert out.stats()["reward_acc"] == 0.0


def test_dpo_gradient_matches_derivation():
    # dL/dlogpi(y_w) = -beta * sigmoid(-beta h), dL/dlogpi(y_l) = +beta * sigmoid(-beta h)
    pc, pr, rc, rr = _logps()
    pc.requires_grad_(True)
    pr.requires_grad_(True)
    beta = 0.2
    dpo_loss(pc, pr, rc, rr, beta=beta).losses.sum().backward()
    s = torch.sigmoid(-beta * ((pc - rc) - (pr - rr))).detach()
    assert_close(pc.grad, -beta * s)
    assert_close(pr.grad, beta * s)
    check_gradients(lambda a, b: dpo_loss(a, b, rc, rr, beta=beta).loss, pc, pr)


def test_ipo_hand_values():
    # h = 2, beta = 0.5: (2 - 1/(2*0.5))^2 = 1; with lengths 2 and 4: h = 1/2 - (-1)/4 = 0.75 -> 0.0625
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    assert float(ipo_loss(t(-10.0), t(-12.0), t(-11.0), t(-11.0), beta=0.5).losses) == 1.0
    out = ipo_loss(
        t(-10.0), t(-12.0), t(-11.0), t(-11.0), beta=0.5, chosen_lengths=t(2.0), rejected_lengths=t(4.0)
    )
    assert_close(out.losses, t(0.0625))


def test_bad_inputs():
    a = torch.zeros(3)
    with pytest.raises(ValueError, match="same shape"):
        dpo_loss(a, a, a, torch.zeros(4))
    with pytest.raises(ValueError, match="1-d"):
        dpo_loss(torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(a, a, a, a, beta=0.0)
    with pytest.raises(ValueError, match="both"):
        ipo_loss(a, a, a, a, chosen_lengths=a)


# ----------------------------------------------------------------------------- trl cross-check


class _FakeAccelerator:
    device = torch.device("cpu")

    @staticmethod
    def gather_for_metrics(x):
        return x

    @staticmethod
    def gather(x):
        return x


class _FakeModel:
    """Stands in for the policy inside trl's DPOTrainer._compute_loss: returns the per-token
    log-probs of the labels under fixed random logits (what trl's fused LM head returns)."""

    training = True

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def __call__(self, *, input_ids, attention_mask, labels, use_cache, fused_lm_head):
        logp = F.log_softmax(self.logits[:, :-1].double(), -1)
        tgt = labels[:, 1:]
        per_tok = logp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1) * (tgt != -100)
        zeros = torch.zeros_like(per_tok)
        return SimpleNamespace(log_probs=per_tok, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool())


def _trl_loss(loss_type: str, beta: float, batch: dict, logits: torch.Tensor) -> torch.Tensor:
    dpo_mod = pytest.importorskip("trl.trainer.dpo_trainer")
    model = _FakeModel(logits)
    fake = SimpleNamespace(
        model=model,
        accelerator=_FakeAccelerator(),
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type="reverse_kl",
        loss_types=[loss_type],
        loss_weights=[1.0],
        beta=beta,
        label_smoothing=0.0,
        use_weighting=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    return dpo_mod.DPOTrainer._compute_loss(fake, model, batch, return_outputs=False)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_matches_trl_dpo_trainer_loss(loss_type):
    """Random logits for 3 pairs (rows [chosen..., rejected...] as trl batches them): trl's loss and
    ours, fed the same per-sequence log-probs, agree to float64 precision."""
    g = torch.Generator().manual_seed(1)
    n, t, v, beta = 3, 9, 11, 0.25
    ids = torch.randint(3, v, (2 * n, t), generator=g)
    completion = torch.zeros(2 * n, t, dtype=torch.long)
    for i in range(2 * n):  # prompts of 3 tokens, completions of varying length, right padding
        end = t - (i % 3)
        completion[i, 3:end] = 1
    attn = torch.ones_like(ids)
    logits = torch.randn(2 * n, t, v, generator=g, dtype=torch.float64)
    ref = -torch.rand(2 * n, generator=g, dtype=torch.float64) * 10
    batch = {
        "input_ids": ids,
        "attention_mask": attn,
        "completion_mask": completion,
        "ref_chosen_logps": ref[:n],
        "ref_rejected_logps": ref[n:],
    }
    expected = _trl_loss(loss_type, beta, batch, logits)

    model = _FakeModel(logits)
    labels = ids.masked_fill(completion == 0, -100)
    logps = model(
        input_ids=ids, attention_mask=attn, labels=labels, use_cache=False, fused_lm_head=True
    ).log_probs
    seq = logps.sum(1)
    if loss_type == "ipo":
        lengths = completion.sum(1).double()
        ours = ipo_loss(
            seq[:n],
            seq[n:],
            ref[:n],
            ref[n:],
            beta=beta,
            chosen_lengths=lengths[:n],
            rejected_lengths=lengths[n:],
        )
    else:
        ours = dpo_loss(seq[:n], seq[n:], ref[:n], ref[n:], beta=beta)
    assert_close(ours.loss, expected, atol=1e-10, rtol=1e-10, name=f"{loss_type} vs trl")


def test_npo_is_two_over_beta_times_dpo_with_only_a_rejected_response():
    # NPO Eq. 3 = DPO Eq. 7 with the chosen log-ratio at 0 and the forget sample as the rejected response:
    # h = 0 - (log pi - log pi_ref) = NLL - NLL_ref, scaled by 2 / beta.
    g = torch.Generator().manual_seed(0)
    nll = torch.rand(5, generator=g, dtype=torch.float64) * 30
    nll_ref = torch.rand(5, generator=g, dtype=torch.float64) * 30
    beta = 0.05
    zero = torch.zeros(5, dtype=torch.float64)
    want = dpo_loss(zero, -nll, zero, -nll_ref, beta=beta).losses.mean() * 2 / beta
    assert torch.allclose(npo_loss(nll, nll_ref, beta=beta), want, rtol=1e-12, atol=0)
    # hand value for one sequence: NLL 3, NLL_ref 1, beta 0.5 -> -(2/0.5) log sigmoid(1) = 4 log(1 + e^-1)
    one = npo_loss(
        torch.tensor([3.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64), beta=0.5
    )
    assert one.item() == pytest.approx(4 * math.log1p(math.exp(-1.0)), rel=1e-12)


def test_npo_gradient_and_errors():
    nll = torch.tensor([2.0, 5.0, 1.0], dtype=torch.float64, requires_grad=True)
    nll_ref = torch.tensor([1.0, 4.0, 3.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: npo_loss(a, nll_ref, beta=0.3), (nll,))
    with pytest.raises(ValueError, match="beta"):
        npo_loss(nll, nll_ref, beta=0.0)
    with pytest.raises(ValueError, match="same shape"):
        npo_loss(nll, nll_ref[:2], beta=0.1)
