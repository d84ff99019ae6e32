"""xentlab.lm.trainer_defaults builds what transformers' Trainer builds with its defaults."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")

from xentlab.lm.trainer_defaults import MAX_GRAD_NORM, decay_parameter_names, trainer_adamw  # noqa: E402


class _Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)  # weight decays, bias does not
        self.layer_norm = torch.nn.LayerNorm(4)  # neither decays (layer type)
        self.frozen = torch.nn.Linear(4, 4, bias=False)
        self.frozen.weight.requires_grad_(False)


def test_decay_groups_follow_the_trainer_rule():
    m = _Block()
    assert decay_parameter_names(m) == {"proj.weight", "frozen.weight"}
    opt, _ = trainer_adamw(m, lr=1e-3, weight_decay=0.1, total_steps=5)
    decay, no_decay = opt.param_groups
    assert [p is m.proj.weight for p in decay["params"]] == [True] and decay["weight_decay"] == 0.1
    assert {id(p) for p in no_decay["params"]} == {
        id(m.proj.bias),
        id(m.layer_norm.weight),
        id(m.layer_norm.bias),
    }
    assert no_decay["weight_decay"] == 0.0
    assert all(g["betas"] == (0.9, 0.999) and g["eps"] == 1e-8 for g in opt.param_groups)
    assert MAX_GRAD_NORM == 1.0


def test_linear_schedule_with_warmup_by_hand():
    # lr_t = lr * t / W for t < W, then lr * (T - t) / (T - W): W = 2, T = 6 -> 0, .5, 1, .75, .5, .25, 0
    m = torch.nn.Linear(2, 1)
    opt, sched = trainer_adamw(m, lr=2.0, weight_decay=0.0, total_steps=6, warmup_steps=2)
    lrs = []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.0, 1.0, 2.0, 1.5, 1.0, 0.5, 0.0])


def test_no_warmup_starts_at_the_peak():
    opt, sched = trainer_adamw(torch.nn.Linear(2, 1), lr=1.0, weight_decay=0.0, total_steps=4)
    assert opt.param_groups[0]["lr"] == 1.0
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.75)


@pytest.mark.parametrize("kwargs", [{"total_steps": 0}, {"total_steps": 3, "warmup_steps": -1}])
def test_bad_step_counts_raise(kwargs):
    with pytest.raises(ValueError, match="steps"):
        trainer_adamw(torch.nn.Linear(2, 1), lr=1e-3, weight_decay=0.0, **kwargs)
