"""Adversarial objectives run and differentiate; the whole reproduce.py runs at smoke scale."""

from pathlib import Path

import torch
from compsum.adversarial import AttackConfig, adv_comp_sum_loss, pgd_at_loss, trades_loss

from xentlab.models.mlp import build_mlp
from xentlab.testing import run_smoke


def test_adversarial_objectives_backprop():
    torch.manual_seed(0)
    model = build_mlp(8, (16,), 3)
    x, y = torch.rand(10, 8), torch.randint(0, 3, (10,))
    attack = AttackConfig(eps=0.1, step_size=0.05, steps=3)
    for loss in (pgd_at_loss(model, x, y, attack), trades_loss(model, x, y, attack, beta=6.0),
                 adv_comp_sum_loss(model, x, y, attack, tau=1.0, nu=1.0)):  # fmt: skip
        model.zero_grad()
        assert torch.isfinite(loss)
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
    assert model.training


def test_smoke(tmp_path):
    # one worker: in-process, so the test pays no extra `import torch` in a worker process
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path, extra_args=("--workers", "1"))
    assert {c["id"] for c in result["claims"]} >= {"bound-holds", "mae-deficit-grows-with-K"}
