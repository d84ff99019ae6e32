"""Test inputs and the official tolerance criterion for linear cross-entropy implementations.

Used by shared/tests/test_kernels_*.py and by the cce package's benchmark.

Criterion (apple/ml-cross-entropy tests/test_cce_loss_{forward,backward}.py): with ``gt`` the
ground truth (here float64) and ``ref`` plain PyTorch at the test dtype, an implementation passes
when, elementwise, ``|impl - gt| <= |ref - gt| + margin``: no worse than PyTorch itself at that
dtype, plus a margin (official: fp32 1e-5 forward, fp16 1e-3, bf16 1e-2).
"""

from __future__ import annotations

import torch

from xentlab.kernels.lce import linear_cross_entropy
from xentlab.kernels.reference import naive_linear_cross_entropy

MARGIN = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 1e-2}


def make_inputs(n, v, d, *, bias=False, invalids=False, zipf=0.0, batch=4, seed=0):
    """Official test data: e = randn / sqrt(D), c = randn, and the first min(N, V)/2 classifier rows
    copied from e so that some logits are large (peaked softmax).  e is viewed as
    (batch, N / batch, D) for ``shift``.

    ``zipf > 0`` adds a bias b_j = -zipf * log(rank_j) with a random rank per class: as in a real
    LM, most classes are unlikely for every token and targets are drawn from that prior, which is what makes whole tiles of the softmax
    negligible once the vocabulary is sorted (the gradient filtering tests)."""
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(n, d, generator=g, dtype=torch.float64) / d**0.5
    c = torch.randn(v, d, generator=g, dtype=torch.float64)
    c[: min(n, v) // 2] = e[: min(n, v) // 2]
    t = torch.randint(0, v, (n,), generator=g)
    b = torch.randn(v, generator=g, dtype=torch.float64) * 0.02 if bias else None
    if zipf:
        rank = torch.randperm(v, generator=g).to(torch.float64) + 1
        b = (0.0 if b is None else b) - zipf * rank.log()
        t = torch.multinomial(
            torch.softmax(b, 0), n, replacement=True, generator=g
        )  # targets follow the prior
    if invalids:
        t[torch.randperm(n, generator=g)[: n // 5]] = -100
    return e.view(batch, n // batch, d), c, t.view(batch, n // batch), b


def loss_and_grads(fn, e, c, t, b, dtype, reduction, **kw):
    """Loss and [dE, dC, db] at ``dtype`` for a backward through a weighted objective: the mean
    for ``mean``, sum / #counted for ``sum`` (as the official test), and a random per-token
    weighting for ``none`` (so per-token upstream gradients are exercised)."""
    ee = e.to(dtype).detach().clone().requires_grad_()
    cc = c.to(dtype).detach().clone().requires_grad_()
    bb = None if b is None else b.to(dtype).detach().clone().requires_grad_()
    loss = fn(ee, cc, t, bias=bb, reduction=reduction, **kw)
    count = (t[..., kw.get("shift", 0) :] != -100).sum().clamp_min(1)
    if reduction == "none":
        # drawn on the CPU (the same weights on every device), then moved to the loss: a CPU
        # tensor times a CUDA one raises: every "none" case of the GPU tests would fail
        w = torch.rand(loss.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        w = w.to(loss.device)
        obj = (loss.double() * w).sum() / count
    elif reduction == "sum":
        obj = loss.double() / count
    else:
        obj = loss.double()
    obj.backward()
    grads = [ee.grad, cc.grad] + ([] if bb is None else [bb.grad])
    # a sum is compared per counted token, like its gradients (absolute margins are per token)
    shown = obj if reduction == "sum" else loss
    return shown.detach(), [x.detach() for x in grads]


def check_against_reference(impl_fn, e, c, t, b, dtype, reduction, margin=None, **kw):
    """Assert the official criterion for the loss and every gradient; returns the worst excess."""
    margin = MARGIN[dtype] if margin is None else margin
    gt_loss, gt_grads = loss_and_grads(naive_linear_cross_entropy, e, c, t, b, torch.float64, reduction, **kw)
    ref_loss, ref_grads = loss_and_grads(naive_linear_cross_entropy, e, c, t, b, dtype, reduction, **kw)
    out_loss, out_grads = loss_and_grads(impl_fn, e, c, t, b, dtype, reduction, **kw)
    names = ["loss", "dE", "dC", "db"]
    worst = 0.0
    for name, gt, ref, out in zip(
        names, [gt_loss, *gt_grads], [ref_loss, *ref_grads], [out_loss, *out_grads]
    ):
        assert out.shape == gt.shape, f"{name}: shape {tuple(out.shape)} != {tuple(gt.shape)}"
        assert torch.isfinite(out).all(), f"{name}: non-finite values"
        err = (out.double() - gt).abs()
        allowed = (ref.double() - gt).abs() + margin
        excess = (err - allowed).max().item()
        if excess > 0:
            i = int((err - allowed).flatten().argmax())
            raise AssertionError(
                f"{name}: worse than plain PyTorch at {dtype} + {margin:g}: at flat index {i} "
                f"impl={out.flatten()[i].item():.6g} float64={gt.flatten()[i].item():.6g} "
                f"torch@{dtype}={ref.flatten()[i].item():.6g} (excess {excess:.3g})"
            )
        worst = max(worst, excess)
    return worst


def lce(impl, **fixed):
    def fn(e, c, t, **kw):
        return linear_cross_entropy(e, c, t, impl=impl, **fixed, **kw)

    return fn
