"""The fine-tuning optimiser of the official language-modelling script (DRSY/EMO, language_modeling/run_lm.py).

run_lm.py builds ``torch.optim.AdamW`` with ``--weight_decay`` (default 0.0; run_lm_gpt2.sh does not set it)
and ``transformers.get_scheduler("linear", num_warmup_steps=0, num_training_steps=max_train_steps)``:
the learning rate falls linearly from its initial value to 0 over the run, with no warm-up. MLE and EMO
fine-tuning share it. (AdamW with weight decay 0 is Adam.)
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def finetune_optimizer(
    params: Iterable[torch.nn.Parameter], lr: float, total_steps: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (weight decay 0) and the linear decay lr * (1 - s / total_steps) after s scheduler steps."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    # transformers' linear schedule with 0 warm-up: max(0, (T - s) / max(1, T))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: max(0.0, (total_steps - s) / max(1, total_steps))
    )
    return opt, sched
