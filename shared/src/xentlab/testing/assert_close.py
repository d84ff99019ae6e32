"""assert_close with a report that shows where and how badly two tensors disagree."""

from __future__ import annotations

import torch

from xentlab.testing.tolerances import default_tolerance


def assert_close(
    actual: torch.Tensor,
    expected: torch.Tensor,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    name: str = "",
    worst: int = 5,
) -> None:
    """Assert ``|actual - expected| <= atol + rtol * |expected|`` elementwise.

    Tolerances default to those of ``actual``'s dtype. The comparison is done in float64, so a
    low-precision result can be checked against a float64 reference. On failure the message lists
    the ``worst`` elements (index, actual, expected, error, allowed), the max absolute and relative
    errors and the fraction of elements out of tolerance.
    """
    actual = torch.as_tensor(actual)
    expected = torch.as_tensor(expected)
    label = f"{name}: " if name else ""
    if actual.shape != expected.shape:
        raise AssertionError(f"{label}shape {tuple(actual.shape)} != expected {tuple(expected.shape)}")
    d_rtol, d_atol = default_tolerance(actual.dtype)
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    nan_mismatch = torch.isnan(a) != torch.isnan(e)
    err = (a - e).abs()
    # inf == inf (same sign) is a match; anything else involving inf/nan is not
    same_inf = torch.isinf(a) & torch.isinf(e) & (torch.sign(a) == torch.sign(e))
    err = torch.where(same_inf | (torch.isnan(a) & torch.isnan(e)), torch.zeros_like(err), err)
    allowed = atol + rtol * e.abs().nan_to_num(0.0, posinf=0.0, neginf=0.0)
    bad = (err > allowed) | nan_mismatch | (torch.isnan(err) & ~same_inf)
    if not bool(bad.any()):
        return
    flat_bad = bad.flatten()
    excess = torch.where(
        flat_bad, (err - allowed).flatten().nan_to_num(float("inf")), torch.full_like(err.flatten(), -1.0)
    )
    k = min(worst, int(flat_bad.sum()))
    idx = excess.topk(k).indices
    rows = []
    for i in idx.tolist():
        pos = tuple(int(v) for v in torch.unravel_index(torch.tensor(i), a.shape)) if a.ndim else ()
        rows.append(
            f"  at {pos}: actual={a.flatten()[i].item():.6g} expected={e.flatten()[i].item():.6g} "
            f"err={err.flatten()[i].item():.3g} allowed={allowed.flatten()[i].item():.3g}"
        )
    finite = torch.isfinite(err)
    max_abs = err[finite].max().item() if finite.any() else float("nan")
    rel = (err / e.abs().clamp_min(1e-300))[finite & (e != 0)]
    max_rel = rel.max().item() if rel.numel() else float("nan")
    raise AssertionError(
        f"{label}{int(flat_bad.sum())}/{bad.numel()} elements ({100 * flat_bad.float().mean().item():.2f}%) "
        f"out of tolerance (rtol={rtol:g}, atol={atol:g}, dtype={actual.dtype}); "
        f"max abs err {max_abs:.3g}, max rel err {max_rel:.3g}; worst:\n" + "\n".join(rows)
    )
