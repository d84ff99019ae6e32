"""The adversarial training objectives against float64 hand formulas, and the train/eval-mode convention
of the TRADES reference code (yaodongyu/TRADES trades.py: ``model.eval()`` before the clean target and
the inner maximisation, ``model.train()`` for the outer loss)."""

import torch
import torch.nn.functional as F
from compsum import adversarial
from compsum.adversarial import AttackConfig, adv_comp_sum_loss, trades_loss
from torch import nn

from xentlab.models.mlp import build_mlp
from xentlab.testing import assert_close


class ModeProbe(nn.Module):
    """A linear model that records, for each forward, whether it ran in train mode."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.modes: list[bool] = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.lin(x)


def test_clean_target_and_inner_maximisation_run_in_eval_mode():
    # TRADES reference: model.eval(); the clean target softmax(model(x_natural)) and every PGD step are
    # computed in eval mode; model.train(); then the two outer forwards (clean logits, adversarial
    # logits). With 3 PGD steps: 1 + 3 eval forwards, then 2 train forwards. Same for ADV-COMP-SUM,
    # whose fixed clean logits play the role of TRADES' clean target.
    x, y = torch.rand(5, 4), torch.randint(0, 3, (5,))
    attack = AttackConfig(eps=0.1, step_size=0.05, steps=3)
    for loss_fn in (
        lambda m: trades_loss(m, x, y, attack, beta=6.0),
        lambda m: adv_comp_sum_loss(m, x, y, attack, tau=1.0, nu=1.0),
    ):
        model = ModeProbe().train()
        loss_fn(model)
        assert model.modes == [False] * 4 + [True] * 2, model.modes
        assert model.training


def test_outer_losses_match_float64_hand_formulas(monkeypatch):
    torch.manual_seed(0)
    model = build_mlp(6, (8,), 4).double()
    x, y = torch.rand(7, 6, dtype=torch.float64), torch.randint(0, 4, (7,))
    x_adv = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    # fix the inner maximiser so that only the outer formula is tested
    monkeypatch.setattr(adversarial, "pgd_linf", lambda *a, **k: x_adv)
    attack = AttackConfig()
    with torch.no_grad():
        z, za = model(x), model(x_adv)
        p, q = F.softmax(z, 1), F.softmax(za, 1)
        ce = -torch.log(p[torch.arange(7), y]).mean()
        # TRADES: CE(h(x), y) + beta * (1/B) sum_i KL(p(x_i) || p(x'_i))
        kl = (p * (p.log() - q.log())).sum(1).mean()
        trades_ref = ce + 3.0 * kl
        # ADV-COMP-SUM, tau = 1: CE + nu * (1/B) sum_i ||Dbar(x'_i) - Dbar(x_i)||_2 with
        # Dbar(x, y) = (h(x, y) - h(x, y'))_{y'}
        d = (za[torch.arange(7), y][:, None] - za) - (z[torch.arange(7), y][:, None] - z)
        acs_ref = ce + 0.3 * d.norm(dim=1).mean()
    assert_close(trades_loss(model, x, y, attack, beta=3.0), trades_ref, atol=1e-12, name="trades")
    assert_close(adv_comp_sum_loss(model, x, y, attack, tau=1.0, nu=0.3), acs_ref, atol=1e-9, name="acs")
