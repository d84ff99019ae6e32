"""The fine-tuning optimiser and schedule follow the official language_modeling/run_lm.py.

run_lm.py: torch.optim.AdamW with --weight_decay default 0.0, and transformers.get_scheduler("linear",
num_warmup_steps=0 (default), num_training_steps=max_train_steps), whose factor after s scheduler
steps is max(0, (T - s) / max(1, T - 0)) = 1 - s / T for s <= T (hand derivation, warm-up 0).
"""

import pytest
import torch
from emo.experiment import RunConfig
from emo.optim import finetune_optimizer


def test_adamw_without_weight_decay():
    p = torch.nn.Parameter(torch.zeros(3))
    opt, _ = finetune_optimizer([p], lr=5e-5, total_steps=10)
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[0]["weight_decay"] == 0.0  # run_lm.py --weight_decay default 0.0


def test_linear_decay_to_zero_without_warmup():
    p = torch.nn.Parameter(torch.zeros(3))
    lr, total = 2e-3, 8
    opt, sched = finetune_optimizer([p], lr=lr, total_steps=total)
    seen = []
    for _ in range(total):
        seen.append(opt.param_groups[0]["lr"])  # the lr this step's update uses
        p.grad = torch.ones_like(p)
        opt.step()
        sched.step()
    expected = [lr * (1 - s / total) for s in range(total)]  # 1 - s/T, warm-up 0
    assert seen == pytest.approx(expected, rel=1e-12, abs=0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-15)


def test_bad_total_steps():
    p = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ValueError, match="total_steps"):
        finetune_optimizer([p], lr=1e-3, total_steps=0)


def test_cpu_finetuning_uses_the_official_schedule():
    # the cpu run fine-tunes with the linear decay of run_lm.py (it used a constant lr before)
    assert RunConfig().finetune_schedule == "linear"
