"""The Direct Coverage Optimization (DCO) loss (Chen et al. 2025, arXiv 2502.07154, Sec. 4).

For a problem x with reference answer y, let p = p_hat(y|x) be the model's probability of the whole
answer sequence (every answer token and the closing EOS). pass@N with N independent samples is
the coverage 1 - (1 - p)^N, and DCO minimises its negative log:

    l_DCO^N(x, y) = -log(1 - (1 - p)^N)                                   (DCO loss)

N = 1 gives -log p, the sequence cross-entropy l_CE. Writing s = log p (so l_CE = -s),

    d l_DCO / d s = -N p (1 - p)^(N-1) / (1 - (1 - p)^N) = -F(N, p)
    => grad l_DCO = F(N, p) * grad l_CE,   F(N, p) = N p (1 - p)^(N-1) / (1 - (1 - p)^N)

(the paper's gradient form; F is written out in the authors' blog post of 2025-03-07). F = 1 at
N = 1, F -> 1 as p -> 0, and F decreases to 0 as p -> 1: confident examples stop receiving gradient.

Numerics (everything in float64, from s only, never from p = exp(s) alone):

* log(1 - p) = log1mexp(s), where log1mexp(t) = log(1 - e^t) for t <= 0 is log(-expm1(t)) for
  t > -ln 2 and log1p(-exp(t)) otherwise (Maechler 2012, "Accurately computing log(1 - exp(-|a|))").
* x = N log(1 - p) <= 0, and log coverage = log(1 - e^x) = log1mexp(x) when x < -ln 2. For small
  |x| (p << 1/N) the coverage is ~ N p and 1 - e^x would lose everything to cancellation or
  underflow (p = e^-800 is 0 in float64), so there we use
  log(1 - e^x) = log(-x) + log(expm1(x) / x), log(-x) = log N + log(-log(1 - p)), and
  log(-log(1 - p)) = s + log(-log1p(-p) / p) for p < 1/2 (the ratio -> 1 as p -> 0; set to 1 when p
  underflows).
* log F = log N + s + (N - 1) log(1 - p) - log coverage, exponentiated at the end: finite for
  every s <= 0, F(N, 1) = 0 for N > 1.

N = 1 returns -s itself (bit-identical to CE) and F = 1.
"""

from __future__ import annotations

import math

import torch

LN2 = math.log(2.0)


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | float) or int(n) != n or n < 1:
        raise ValueError(f"N must be a positive integer, got {n!r}")
    return int(n)


# A float32 sum of per-token log-softmax values of a near-certain answer can round to a tiny positive
# number (seen: 1.9e-6 after fine-tuning a pretrained base). Values up to this are rounding and are
# read as log p = 0 (p = 1); anything larger is a caller's bug and raises.
LOGP_ROUNDING_TOL = 1e-4


def _check_logp(log_p: torch.Tensor) -> None:
    if not isinstance(log_p, torch.Tensor) or not log_p.is_floating_point():
        raise TypeError("log_p must be a floating-point tensor of sequence log-probabilities")
    if bool(torch.isnan(log_p).any()):
        raise ValueError("log_p contains NaN")
    if bool((log_p > LOGP_ROUNDING_TOL).any()):
        raise ValueError(
            f"log_p must be <= 0 (a log-probability; rounding up to {LOGP_ROUNDING_TOL:g} is read as 0), max is {log_p.max().item():.3g}"
        )


def log1mexp(t: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(t)) for t <= 0, accurate over the whole range (-inf at t = 0, 0 at t = -inf)."""
    near0 = t > -LN2
    a = torch.log(-torch.expm1(torch.where(near0, t, torch.full_like(t, -1.0))))
    b = torch.log1p(-torch.exp(torch.where(near0, torch.full_like(t, -1.0), t)))
    return torch.where(near0, a, b)


def _log_coverage_and_factor(s: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(log(1 - (1-p)^N), F(N, p)) in float64 for s = log p <= 0 (n >= 2)."""
    s = s.to(torch.float64).clamp(max=0.0)  # rounding above 0 (LOGP_ROUNDING_TOL) means p = 1
    log_q = log1mexp(s)  # log(1 - p) in [-inf, 0]
    # log(-log(1 - p)): for p < 1/2 via s + log(-log1p(-p)/p) (stable as p -> 0), else directly
    p = torch.exp(s)
    small = s < -LN2
    # below float64's smallest normal number (s < -708.4) p is subnormal: too few bits for the ratio
    # (at the smallest subnormal log1p(-p) rounds to 0), so use its limit 1 there (error ~p/2 < 1e-308)
    normal = p >= torch.finfo(torch.float64).tiny
    p_safe = torch.where(small & normal, p, torch.ones_like(p))
    ratio = torch.where(small & normal, -torch.log1p(-p_safe) / p_safe, torch.ones_like(p))
    log_neg_log_q = torch.where(small, s + torch.log(ratio), torch.log(-torch.where(small, -p_safe, log_q)))
    x = n * log_q  # log (1-p)^N <= 0
    far = x < -LN2  # coverage not tiny: log1mexp is accurate
    x_near = torch.where(far | (x == 0), torch.full_like(x, -0.5), x)
    g = torch.where(x == 0, torch.zeros_like(x), torch.log(torch.expm1(x_near) / x_near))
    log_cov_near = math.log(n) + log_neg_log_q + g
    log_cov = torch.where(far, log1mexp(torch.where(far, x, torch.full_like(x, -1.0))), log_cov_near)
    # (N - 1) log(1 - p) is -inf at p = 1 (F = 0); keep it finite-safe for the exp below
    log_f = math.log(n) + s + (n - 1) * log_q - log_cov
    return log_cov, torch.exp(log_f).clamp(max=1.0)


class _DCO(torch.autograd.Function):
    """l_DCO^N(s) with the analytic gradient dl/ds = -F(N, e^s) (finite everywhere, also at p = 1)."""

    @staticmethod
    def forward(ctx, s: torch.Tensor, n: int) -> torch.Tensor:  # type: ignore[override]
        log_cov, f = _log_coverage_and_factor(s, n)
        ctx.save_for_backward(f)
        return (-log_cov).to(s.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (f,) = ctx.saved_tensors
        return (-f * grad_out.to(torch.float64)).to(grad_out.dtype), None


def dco_loss(log_p: torch.Tensor, n: int, *, reduction: str = "mean") -> torch.Tensor:
    """-log(1 - (1 - p)^N) per example from ``log_p`` = log p_hat(y|x) (B,), the summed answer-token
    log-probabilities (EOS included). reduction: "mean" | "sum" | "none".

    N = 1 is exactly the sequence cross-entropy -log_p. The gradient w.r.t. log_p is -F(N, p).
    """
    n = _check_n(n)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    _check_logp(log_p)
    per = -log_p if n == 1 else _DCO.apply(log_p, n)
    if reduction == "none":
        return per
    return per.sum() if reduction == "sum" else per.mean()


@torch.no_grad()
def coverage_factor(log_p: torch.Tensor, n: int) -> torch.Tensor:
    """F(N, p) = N p (1-p)^(N-1) / (1 - (1-p)^N) in [0, 1] (float64, no gradient)."""
    n = _check_n(n)
    _check_logp(log_p)
    if n == 1:
        return torch.ones_like(log_p, dtype=torch.float64)
    return _log_coverage_and_factor(log_p.detach(), n)[1]


@torch.no_grad()
def log_coverage(log_p: torch.Tensor, n: int) -> torch.Tensor:
    """log(1 - (1 - p)^N), the log of the exact pass@N of each example (float64)."""
    n = _check_n(n)
    _check_logp(log_p)
    if n == 1:
        return log_p.detach().to(torch.float64)
    return _log_coverage_and_factor(log_p.detach(), n)[0]
