"""The official scripts train with transformers' ``Trainer`` and its defaults (unllama_token_clf.py,
llama_seq_clf.py set only lr, batch, epochs and weight decay): AdamW (0.9, 0.999, 1e-8), no weight
decay on bias / norm parameters (``Trainer.get_decay_parameter_names``), a linear decay of the lr from
its peak to 0 over all steps with no warm-up (``lr_scheduler_type="linear"``, ``warmup_steps=0``) and
gradient-norm clipping at 1.0 (``max_grad_norm``). ``ls_llama.train.trainer_optimizer`` reproduces
them; ``--scale full`` uses it."""

import torch
from ls_llama.train import TRAINER_MAX_GRAD_NORM, trainer_optimizer
from torch import nn


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)  # weight decayed, bias not
        self.norm = nn.LayerNorm(3)  # neither decayed
        self.frozen = nn.Linear(3, 3)
        self.frozen.requires_grad_(False)


def test_linear_decay_to_zero_without_warmup():
    opt, sched = trainer_optimizer(_Tiny(), lr=1e-3, weight_decay=0.01, total_steps=4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # get_linear_schedule_with_warmup(0 warm-up): lr_t = lr * (T - t) / T for t = 0..T-1
    assert lrs == [1e-3 * (4 - t) / 4 for t in range(4)]
    assert opt.param_groups[0]["lr"] == 0.0


def test_no_decay_on_bias_and_norm_and_frozen_excluded():
    m = _Tiny()
    opt, _ = trainer_optimizer(m, lr=1e-3, weight_decay=0.01, total_steps=10)
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.01 for p in g["params"]}
    no_decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert decay == {id(m.lin.weight)}
    assert no_decay == {id(m.lin.bias), id(m.norm.weight), id(m.norm.bias)}
    assert all(g["betas"] == (0.9, 0.999) and g["eps"] == 1e-8 for g in opt.param_groups)


def test_one_step_matches_hand_adamw():
    # first AdamW step with zero-initialised moments: p <- p - lr * wd * p - lr * g / (|g| + eps)
    # (bias-corrected m/sqrt(v) = g/|g|); the bias gets no decay term.
    torch.manual_seed(0)
    m = _Tiny().double()
    w0, b0 = m.lin.weight.detach().clone(), m.lin.bias.detach().clone()
    opt, _ = trainer_optimizer(m, lr=0.1, weight_decay=0.5, total_steps=3)
    m.lin.weight.grad = torch.full_like(w0, 2.0)
    m.lin.bias.grad = torch.full_like(b0, -3.0)
    opt.step()
    torch.testing.assert_close(m.lin.weight.detach(), w0 * (1 - 0.1 * 0.5) - 0.1 * 2.0 / (2.0 + 1e-8))
    torch.testing.assert_close(m.lin.bias.detach(), b0 + 0.1 * 3.0 / (3.0 + 1e-8))


def test_clip_norm_is_trainer_default():
    assert TRAINER_MAX_GRAD_NORM == 1.0


def test_finetune_config_default_keeps_constant_lr():
    # the committed cpu runs: plain AdamW on the trainable parameters, no scheduler, no clipping
    from ls_llama.train import FinetuneConfig, make_optimizer

    m = _Tiny()
    opt, sched = make_optimizer(m, FinetuneConfig(epochs=2), steps_per_epoch=3)
    assert sched is None and len(opt.param_groups) == 1
    assert opt.param_groups[0]["weight_decay"] == 0.01 and len(opt.param_groups[0]["params"]) == 4
    opt, sched = make_optimizer(m, FinetuneConfig(epochs=2, trainer_defaults=True), steps_per_epoch=3)
    assert sched is not None and sched.lr_lambdas[0](6) == 0.0 and sched.lr_lambdas[0](3) == 0.5
