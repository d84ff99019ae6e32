"""The optimiser and lr schedule that transformers' ``Trainer`` builds when a script keeps its defaults.

Many official codebases train through ``Trainer`` and set only the lr, batch, epochs and weight decay,
so their recipe is the Trainer's defaults (``TrainingArguments``): AdamW with betas (0.9, 0.999) and
eps 1e-8, no weight decay on bias and norm parameters (``Trainer.get_decay_parameter_names``), the
``linear`` schedule (linear warm-up over ``warmup_steps``, then linear decay to 0 at the last step,
``get_linear_schedule_with_warmup``) and gradient-norm clipping at ``max_grad_norm`` = 1.0. A package
that reproduces such a recipe on its own training loop builds the optimiser here, so the rule lives
in one place and follows transformers (the fidelity audits of prob-unlearn and ls-llama each found a
loop that had silently used other settings). ``xentlab.lm.train.LMTrainConfig``'s defaults are a
different, pretraining recipe.

transformers is imported on use: xentlab does not depend on it; the packages that call this do.
"""

from __future__ import annotations

import torch

from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
MAX_GRAD_NORM = 1.0  # TrainingArguments.max_grad_norm


def decay_parameter_names(model: torch.nn.Module) -> set[str]:
    """Names of the parameters the Trainer applies weight decay to: everything but biases and norm
    weights (by layer type and by name pattern), as ``Trainer.get_decay_parameter_names`` decides."""
    from transformers import Trainer

    # an instance method that does not read ``self``: calling it unbound keeps transformers' exact rule
    return set(Trainer.get_decay_parameter_names(None, model))


def trainer_adamw(
    model: torch.nn.Module, *, lr: float, weight_decay: float, total_steps: int, warmup_steps: int = 0
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """(AdamW, LambdaLR) over ``model``'s trainable parameters with the Trainer's defaults.

    Call ``sched.step()`` after each ``opt.step()``, and clip the gradient norm to ``MAX_GRAD_NORM``
    before it, as the Trainer does. The lr at optimiser step t is ``lr * t / warmup_steps`` during
    warm-up, then ``lr * (total_steps - t) / (total_steps - warmup_steps)``, floored at 0.
    """
    from transformers import get_linear_schedule_with_warmup

    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    decay_names = decay_parameter_names(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if name in decay_names else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.999), eps=1e-8)
    return opt, get_linear_schedule_with_warmup(opt, warmup_steps, total_steps)


__all__ = ["MAX_GRAD_NORM", "SOURCE_DIGEST", "decay_parameter_names", "trainer_adamw"]
