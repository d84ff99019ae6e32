"""The architecture grid (paper Fig. 10): a x10 learning-rate spike for ONE step, three architectures.

Protocol of the official experiments/archgrid/run.py (canonical command in its contract.json:
seeds 0-4, Transformer / MLP+LN / CNN+BN, 200 steps, base lr 0.015, spike at step 50, x10):

* data: sklearn digits in file order, the first 359 rows are the test set, the other 1438 the
  training set (``ghosts.data.load_digits_file_order``); every step is FULL-BATCH on the training set;
* optimiser: torch.optim.Adam (betas 0.9/0.999, eps 1e-8), init seeded by ``torch.manual_seed(seed)``
  separately for each arm, so the three arms start from the same weights;
* schedule: lr = base_lr everywhere except lr = spike_mul * base_lr at the single step
  ``step == spike_at`` (``spike_lr``);
* arms: ``plain`` (Adam), ``clip`` (clip_grad_norm_(1.0) before Adam, train_step_clip) and ``rho``
  (train_step_rho): v = -g/||g|| of the full-batch gradient, rho_a along v on the training set with
  one JVP in eval mode, tau_raw = lr ||g||, and the Adam lr scaled by min(tau_raw, rho_a)/tau_raw,
  i.e. lr_eff = rho_a/||g|| when lr ||g|| > rho_a (``ghosts.controller.capped_lr``), then an
  ordinary Adam step. The cap reads the GRADIENT step length lr ||g||, not the length of Adam's step;
* logged per step: the training loss of the pre-update model (the minibatch is the training set)
  and the test accuracy of the post-update model, evaluated WITHOUT switching to eval mode (the
  official code never calls model.eval() for it): BatchNorm normalises the test set with its own
  batch statistics and its running statistics absorb the test batch. Only CNN+BN is affected.

Ours, measured on top without changing the trajectory: at the step before the spike and at the
spike step, the length tau = ||theta_after - theta_before|| of the step each arm actually took and
rho_a along that step at theta_before (training set, eval mode, the BatchNorm buffers as the
controller's JVP sees them), so r = tau / rho_a of the real update.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ghosts.controller import capped_lr
from ghosts.data import Digits
from ghosts.models import build_model
from ghosts.phase import accuracy
from ghosts.radius import rho_a_along, unit_direction

ARCHGRID_ARCHS = ("ag_transformer", "ag_mlp_ln", "ag_cnn_bn")  # official --archs order
METHODS = ("plain", "clip", "rho")  # official modes plain, grad_clip, rho_ctrl


@dataclass
class ArchgridConfig:
    steps: int = 200
    base_lr: float = 0.015
    spike_at: int = 50  # the one step (0-based) that runs at spike_mul * base_lr
    spike_mul: float = 10.0
    clip_norm: float = 1.0  # train_step_clip max_norm


def spike_lr(step: int, cfg: ArchgridConfig) -> float:
    """The official schedule: x spike_mul at step == spike_at only, base_lr at every other step."""
    return cfg.base_lr * cfg.spike_mul if step == cfg.spike_at else cfg.base_lr


def _params(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@torch.no_grad()
def _load(model, params: dict[str, torch.Tensor]) -> None:
    for n, p in model.named_parameters():
        p.copy_(params[n])


def _step_radius(model, x: torch.Tensor, before: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(tau, rho_a) of the update just taken: tau = ||theta - before||, rho_a along the update at
    ``before``. The model is put back at theta afterwards; the JVP runs in eval mode and leaves the
    BatchNorm buffers untouched (ghosts.radius)."""
    after = _params(model)
    v, tau = unit_direction({n: after[n] - before[n] for n in after})
    _load(model, before)
    try:
        rho = rho_a_along(model, x, v)
    finally:
        _load(model, after)
    return tau, rho


def run_arm(method: str, arch: str, data: Digits, seed: int, cfg: ArchgridConfig) -> dict:
    """One official run (one arm, one architecture, one seed); returns per-step curves and the
    step radii around the spike."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    if not 0 <= cfg.spike_at < cfg.steps:
        raise ValueError(f"spike_at must be in [0, steps={cfg.steps}), got {cfg.spike_at}")
    torch.manual_seed(seed)
    model = build_model(arch).to(data.x_train.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.base_lr)
    log: dict = {"loss": [], "acc": [], "lr": [], "rho": [], "tau": [], "probe": {}}
    probe_steps = {cfg.spike_at - 1, cfg.spike_at} - {-1}
    for step in range(cfg.steps):
        lr = spike_lr(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(data.x_train), data.y_train)  # full batch, train mode
        loss.backward()
        if method == "clip":
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        if method == "rho":
            grads = {
                n: (p.grad.detach() if p.grad is not None else torch.zeros_like(p))
                for n, p in model.named_parameters()
            }
            g_norm = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads.values()))
            if g_norm > 0:
                v = {n: -g / g_norm for n, g in grads.items()}  # the descent direction -g/||g||
                rho = rho_a_along(model, data.x_train, v)
                lr = capped_lr(lr, g_norm, rho)  # lr ||g|| <= rho_a (official tau = min(tau_raw, rhoA))
                log["rho"].append(rho)
                log["tau"].append(lr * g_norm)
            else:  # official: plain Adam step, rho_a = inf, tau = 0
                log["rho"].append(math.inf)
                log["tau"].append(0.0)
        for group in opt.param_groups:
            group["lr"] = lr
        before = _params(model) if step in probe_steps else None
        opt.step()
        if before is not None:
            tau, rho = _step_radius(model, data.x_train, before)
            log["probe"][step] = {"tau": tau, "rho": rho, "r": tau / rho}
        with torch.no_grad():  # official: test accuracy in whatever mode the model is in (train)
            acc = accuracy(model(data.x_test), data.y_test)
        log["loss"].append(float(loss.detach()))
        log["acc"].append(acc)
        log["lr"].append(lr)
    with torch.no_grad():  # ours: the final model with BatchNorm on its running statistics
        model.eval()
        log["final_acc_eval_mode"] = accuracy(model(data.x_test), data.y_test)
        model.train()
    return log


def summarize(log: dict, cfg: ArchgridConfig) -> dict:
    """The official summary (final loss and accuracy, peak loss from the spike on, max tau/rho_a of
    the controller) plus the post-spike dip of the test accuracy and the spike step's r."""
    s = cfg.spike_at
    acc, loss = log["acc"], log["loss"]
    pre = acc[s - 1] if s > 0 else math.nan  # the model that enters the spike step
    dip = min(acc[s:])  # acc[s] is the model right after the x10 step
    out = {
        "pre_acc": pre,
        "dip_acc": dip,
        "dip_retained": dip / pre if pre > 0 else 0.0,
        "final_acc": acc[-1],
        "final_retained": acc[-1] / pre if pre > 0 else 0.0,
        "final_acc_eval_mode": log["final_acc_eval_mode"],
        "final_loss": loss[-1],
        "peak_loss_after_spike": max(loss[s:]),  # official build_summary
        "loss_pre_spike": loss[s],  # the loss at the point the x10 step starts from
        "loss_after_spike": loss[s + 1] if s + 1 < len(loss) else math.nan,
        "r_spike": log["probe"][s]["r"],
        "tau_spike": log["probe"][s]["tau"],
        "rho_spike": log["probe"][s]["rho"],
    }
    if s - 1 in log["probe"]:
        out["r_pre_spike"] = log["probe"][s - 1]["r"]
    if log["rho"]:
        ratios = [t / r for t, r in zip(log["tau"], log["rho"]) if math.isfinite(r) and r > 0]
        out["max_tau_over_rho"] = max(ratios) if ratios else 0.0  # official rho_ctrl statistic
        # how often the cap changed the lr (lr_eff < scheduled lr), and whether it did at the spike
        scheduled = [spike_lr(t, cfg) for t in range(len(log["lr"]))]
        bound = [lr < sched for lr, sched in zip(log["lr"], scheduled)]
        out["cap_bound_frac"] = sum(bound) / len(bound)
        out["cap_bound_at_spike"] = bool(bound[s])
        out["lr_eff_spike"] = log["lr"][s]
    return out


def archgrid_runs(
    archs: Sequence[str], methods: Sequence[str], data: Digits, seed: int, cfg: ArchgridConfig, progress=None
) -> dict[tuple[str, str], dict]:
    """All (architecture, arm) runs of one seed, in the official order (arch, then plain/clip/rho)."""
    combos = [(a, m) for a in archs for m in methods]
    it = progress(combos, desc="archgrid") if progress else combos
    return {(a, m): run_arm(m, a, data, seed, cfg) for a, m in it}
