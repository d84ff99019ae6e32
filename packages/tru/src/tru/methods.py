r"""The unlearning objectives, each a small loss over one common trainer (``unlearn``).

Notation: D_u the forget set (queries x with their true answers y), D_r the retain set,
CE(D) the token-level mean next-token cross-entropy on the response tokens of a batch of D
(``xentlab.lm.train.lm_loss``), and for TRU the target set {(x_u, r_rt, s_rt)}.

* GA (gradient ascent):          L = -CE(D_u)
* GradDiff (gradient difference): L = -CE(D_u) + CE(D_r)                      (TOFU's grad_diff)
* NPO (Zhang et al. 2024):       L = -(2/beta) E_{D_u}[ log sigmoid(-beta log(pi_theta(y|x) / pi_ref(y|x))) ]
                                   with log pi(y|x) the *summed* log-likelihood of the answer and
                                   pi_ref the model before unlearning (official code, beta = 0.1)
* TRU (paper Eq. for the total objective):
      L = L_target + alpha * L_GA-based,
      L_target = -1/N sum_i [ log P(r_rt^i | x_u^i) + log P(s_rt^i | r_rt^i, x_u^i) ]
  i.e. cross-entropy on the reasoning, then on the refusal; the GA-based term is GradDiff.
  We take L_target as the token-level mean over reasoning + refusal tokens (as HF's loss and the
  TOFU code do) rather than a per-sequence sum; see the README.
* Refusal-only (the paper's "w/o reasoning" ablation, IdK-style): TRU with r_rt removed,
      L = CE(s_rt | x_u) + alpha * L_GradDiff.

Each term is its own forward pass (the batches differ in length; one padded concatenation would
waste most of its tokens on padding).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from xentlab.lm.preference import npo_loss as npo_objective
from xentlab.lm.train import LMTrainConfig, fit, lm_loss

METHODS = ("ga", "graddiff", "npo", "refusal", "tru")


def ga_loss(model: Any, b: dict, **_: Any) -> tuple[torch.Tensor, dict[str, float]]:
    forget = lm_loss(model, b["forget"])
    return -forget, {"ce_forget": forget.item()}


def graddiff_loss(model: Any, b: dict, **_: Any) -> tuple[torch.Tensor, dict[str, float]]:
    forget, retain = lm_loss(model, b["forget"]), lm_loss(model, b["retain"])
    return -forget + retain, {"ce_forget": forget.item(), "ce_retain": retain.item()}


def npo_loss(
    model: Any, b: dict, *, ref_model: Any = None, beta: float, nll_ref: torch.Tensor | None = None, **_: Any
) -> tuple[torch.Tensor, dict[str, float]]:
    """NPO; the reference NLL comes from ``ref_model`` or is given (``nll_ref``, e.g. computed with
    a LoRA adapter disabled)."""
    # NPO official code: neg_log_ratios = loss_current - loss_ref with per-sequence summed NLL,
    # loss = -logsigmoid(beta * neg_log_ratios).mean() * 2 / beta
    nll = lm_loss(model, b["forget"], reduction="sum")
    if nll_ref is None:
        with torch.no_grad():
            nll_ref = lm_loss(ref_model, b["forget"], reduction="sum")
    loss = npo_objective(nll, nll_ref, beta=beta)
    return loss, {"nll_forget": nll.mean().item()}


def tru_loss(model: Any, b: dict, *, alpha: float, **_: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """L_target + alpha * GradDiff; ``b["target"]`` holds reasoning+refusal (TRU) or refusal only."""
    target = lm_loss(model, b["target"])
    forget, retain = lm_loss(model, b["forget"]), lm_loss(model, b["retain"])
    loss = target + alpha * (-forget + retain)
    return loss, {"ce_target": target.item(), "ce_forget": forget.item(), "ce_retain": retain.item()}


LOSSES: dict[str, Callable[..., tuple[torch.Tensor, dict[str, float]]]] = {
    "ga": ga_loss,
    "graddiff": graddiff_loss,
    "npo": npo_loss,
    "refusal": tru_loss,
    "tru": tru_loss,
}


@dataclass(frozen=True)
class UnlearnConfig:
    """One unlearning run.

    method: one of METHODS. steps: optimiser steps; batch_size: rows per set per step (forget,
    retain and target batches each). lr: AdamW peak lr (short warm-up, then cosine to 10%).
    alpha: weight of the GradDiff term in TRU / refusal-only. beta: NPO inverse temperature.
    eval_every: steps between validation checkpoints (0: only at the end).
    """

    method: str
    steps: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    alpha: float = 0.5
    beta: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    eval_every: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.alpha < 0 or self.beta <= 0:
            raise ValueError(f"need alpha >= 0 and beta > 0, got alpha={self.alpha}, beta={self.beta}")


def unlearn(
    model: Any,
    cfg: UnlearnConfig,
    streams: dict[str, Callable[[int], dict[str, torch.Tensor]]],
    *,
    pad_id: int,
    on_eval: Callable[[int], None] | None = None,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Run ``cfg.method`` on ``model`` in place. ``streams`` maps "forget", "retain" and (TRU,
    refusal-only) "target" to batch functions of the step; NPO's reference is a frozen copy of
    the model as it is when unlearning starts."""
    needs = {"ga": ("forget",), "graddiff": ("forget", "retain"), "npo": ("forget",)}.get(
        cfg.method, ("target", "forget", "retain")
    )
    missing = [k for k in needs if k not in streams]
    if missing:
        raise ValueError(f"{cfg.method} needs the streams {missing}")
    ref_model = None
    if cfg.method == "npo":
        ref_model = copy.deepcopy(model).eval()
        for p in ref_model.parameters():
            p.requires_grad_(False)
    fn = LOSSES[cfg.method]

    def loss_fn(m: Any, step: int):
        batches = {k: streams[k](step) for k in needs}
        return fn(m, batches, alpha=cfg.alpha, beta=cfg.beta, ref_model=ref_model)

    def callback(done: int) -> None:
        if on_eval is not None and cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            on_eval(done)

    train_cfg = LMTrainConfig(
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_frac=0.1,
        min_lr_frac=0.1,
        grad_clip=cfg.grad_clip,
        log_every=max(1, cfg.steps // 5),
    )
    return fit(model, loss_fn, train_cfg, on_log=on_log, callback=callback)
