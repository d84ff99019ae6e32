"""The convergence-radius bound of the cross-entropy loss along an update direction.

Along a proposed step theta(tau) = theta + tau * v (||v|| = 1), linearise the logits:
z_k(tau) ~ z_k + a_k tau with a_k(x) = grad_theta z_k(x) . v, the directional logit derivatives.
The loss log sum_j exp(z_j(tau)) - z_y(tau) is then singular where the partition function
F(tau) = sum_j w_j exp(a_j tau) vanishes; these complex zeros are the "ghosts of softmax". For two
exponentials to cancel their phases must differ by pi, so no zero lies closer than
pi / (max_k a_k - min_k a_k). Hence (paper, multiclass bound; README "How do I compute rho_a"):

    Delta_a(x) = max_k a_k(x) - min_k a_k(x),   rho_a = pi / max_x Delta_a(x),   r = tau / rho_a.

In the binary case the nearest zero is known exactly: with margin delta = z_y - z_other and
slope difference Delta_a = |a_y - a_other|, 1 + exp(-(delta + s tau)) = 0 at
tau = -(delta + i pi (2k + 1)) / s, so rho* = sqrt(delta^2 + pi^2) / Delta_a (paper, abstract).

The a_k cost ONE forward-mode Jacobian-vector product (torch.func.jvp over functional_call), as
in the official experiments/lrspike/run.py::compute_rho_jvp.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn
from torch.func import functional_call, jvp

Direction = Mapping[str, torch.Tensor]


def _check_direction(model: nn.Module, direction: Direction) -> dict[str, torch.Tensor]:
    """The direction must give one tangent per trainable parameter, with the parameter's shape."""
    params = {n: p for n, p in model.named_parameters()}
    missing = sorted(set(params) - set(direction))
    extra = sorted(set(direction) - set(params))
    if missing or extra:
        raise ValueError(
            f"direction keys must match the model's parameters: missing {missing[:5]}, unexpected {extra[:5]}"
        )
    for n, p in params.items():
        if tuple(direction[n].shape) != tuple(p.shape):
            raise ValueError(
                f"direction[{n!r}] has shape {tuple(direction[n].shape)}, parameter has {tuple(p.shape)}"
            )
    return {n: direction[n].to(device=p.device, dtype=p.dtype) for n, p in params.items()}


def directional_logit_derivatives(
    model: nn.Module, x: torch.Tensor, direction: Direction
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits z(x) and their derivatives a_k(x) = grad_theta z_k(x) . v along ``direction``.

    One JVP over ``functional_call``. The model runs in eval mode during the JVP (as the official
    compute_rho_jvp / compute_rhoA_jvp do), so BatchNorm uses its running statistics and its
    buffers are not updated; the previous mode is restored. ``direction`` is used as given (pass a
    unit vector to get a_k per unit step length). Returns two (N, K) tensors.
    """
    tangents = _check_direction(model, direction)
    primals = {n: p.detach() for n, p in model.named_parameters()}
    was_training = model.training
    model.eval()
    try:

        def logits_of(params: dict[str, torch.Tensor]) -> torch.Tensor:
            return functional_call(model, params, (x,))

        logits, a = jvp(logits_of, (primals,), (tangents,))
    finally:
        model.train(was_training)
    if logits.ndim != 2:
        raise ValueError(f"model must return (N, K) logits, got shape {tuple(logits.shape)}")
    return logits.detach(), a.detach()


def logit_slope_spread(a: torch.Tensor) -> torch.Tensor:
    """Delta_a(x) = max_k a_k(x) - min_k a_k(x) for each sample (the rows of an (N, K) tensor)."""
    if a.ndim != 2 or a.shape[1] < 2:
        raise ValueError(f"a must have shape (N, K) with K >= 2 classes, got {tuple(a.shape)}")
    if not torch.isfinite(a).all():
        raise ValueError("a contains non-finite values")
    return a.max(dim=1).values - a.min(dim=1).values


def rho_from_spread(delta_a: float) -> float:
    """rho_a = pi / Delta_a; inf when Delta_a = 0 (logits do not move, so F has no zero)."""
    if not math.isfinite(delta_a) or delta_a < 0:
        raise ValueError(f"Delta_a must be finite and >= 0, got {delta_a}")
    return math.inf if delta_a == 0.0 else math.pi / delta_a


def rho_a(a: torch.Tensor) -> float:
    """The radius bound over a batch: pi / max_x Delta_a(x) (the worst sample binds)."""
    return rho_from_spread(float(logit_slope_spread(a).max().item()))


def rho_a_along(model: nn.Module, x: torch.Tensor, direction: Direction) -> float:
    """rho_a of ``model`` on the samples ``x`` along the unit ``direction`` (one JVP)."""
    _, a = directional_logit_derivatives(model, x, direction)
    return rho_a(a)


def normalised_step(tau: float, rho: float) -> float:
    """r = tau / rho_a: r < 1 keeps the step inside the convergence radius."""
    if not tau >= 0 or not math.isfinite(tau):
        raise ValueError(f"step length tau must be finite and >= 0, got {tau}")
    if not rho > 0:
        raise ValueError(f"radius rho must be > 0, got {rho}")
    return tau / rho


def binary_exact_radius(margin: torch.Tensor | float, delta_a: torch.Tensor | float):
    """rho* = sqrt(delta^2 + pi^2) / Delta_a, the exact radius for two classes with linear logits.

    ``margin`` is delta = z_y - z_other, ``delta_a`` = |a_y - a_other| > 0. Works on floats and
    (broadcastable) tensors.
    """
    if torch.is_tensor(margin) or torch.is_tensor(delta_a):
        margin_t = torch.as_tensor(margin)
        da = torch.as_tensor(delta_a, dtype=margin_t.dtype if margin_t.is_floating_point() else None)
        if not bool((da > 0).all()):
            raise ValueError("delta_a must be > 0 everywhere")
        return torch.sqrt(margin_t**2 + math.pi**2) / da
    if not delta_a > 0:
        raise ValueError(f"delta_a must be > 0, got {delta_a}")
    return math.sqrt(float(margin) ** 2 + math.pi**2) / float(delta_a)


def unit_direction(tensors: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], float]:
    """(v, ||t||) with v = t / ||t|| over all tensors jointly (the global parameter-space norm)."""
    norm = math.sqrt(sum(float(t.detach().double().pow(2).sum()) for t in tensors.values()))
    if not norm > 0 or not math.isfinite(norm):
        raise ValueError(f"cannot normalise a direction of norm {norm}")
    return {n: t.detach() / norm for n, t in tensors.items()}, norm
