r"""A Liger-Kernel-style fused linear cross-entropy (``impl="torch_token_chunks"``), the
comparison point of the paper's Table 1 ("Liger Kernels").

It chunks over *tokens*, not over the vocabulary: for each chunk of n tokens it materialises the
n x V logits, computes the loss and, already in the forward pass, the gradients

    G = (softmax(z) - onehot) * w,   dE_chunk = G C,   dC += G^T E_chunk,   db += sum_i G_i

with w the reduction weight (1/K for mean, 1 for sum).  (Liger forms the logits in the input
dtype; here, as in every path of this package, they use an fp32 accumulator.)  The backward only rescales the stored
gradients by the incoming scalar.  Chunk size as in Liger: n = next_pow2(ceil(K / ceil(V / D))),
which makes the transient logits about K x D elements (with a floor, see ``liger_token_chunk``).  Its memory is the transient chunk plus a
full-size dC (and dE) held from the forward on.

``reduction="none"`` cannot fold per-token upstream gradients into dC in advance, so in that
case the forward only computes the loss and the backward recomputes the chunks.
"""

from __future__ import annotations

import torch

from xentlab.data.cache import source_digest
from xentlab.kernels.torch_lce import CHUNK_ELEMENTS, acc_dtype, compute_operand, mm_acc

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""


def liger_token_chunk(k: int, v: int, d: int) -> int:
    """Liger's rule, next_pow2(ceil(K / ceil(V / D))), but never fewer tokens than fill the
    transient budget of the vocabulary-chunked path (CHUNK_ELEMENTS logits).  At LLM shapes
    (D in the thousands) Liger's rule governs (128 tokens for Gemma 2 2B); at the small D of a
    CPU benchmark it would give 1-token chunks, each a rank-1 update of the whole dC."""
    inc = max(1, -(-v // d))
    n = max(-(-k // inc), CHUNK_ELEMENTS // max(v, 1), 1)
    return max(1, min(1 << (n - 1).bit_length(), k))


def _chunk_grads(x, c, bias, tgt, softcap, weights, acc, dx, dc, db, n):
    """Per-token loss and, where buffers are given, the weighted gradients, n tokens at a time."""
    k = x.shape[0]
    nll = torch.empty(k, dtype=acc, device=x.device)
    for i0 in range(0, k, n):
        i1 = min(i0 + n, k)
        z = mm_acc(x[i0:i1], c.T, acc)
        if bias is not None:
            z += bias.to(acc)
        if softcap is not None:
            z = softcap * torch.tanh(z / softcap)
        t = tgt[i0:i1]
        lse = torch.logsumexp(z, 1)
        nll[i0:i1] = lse - z.gather(1, t[:, None]).squeeze(1)
        if dx is None and dc is None and db is None:
            continue
        g = (z - lse[:, None]).exp_()
        g[torch.arange(i1 - i0, device=x.device), t] -= 1
        w = weights if weights.dim() == 0 else weights[i0:i1, None]
        g.mul_(w)
        if softcap is not None:
            g.mul_(1 - (z / softcap).square_())
        if db is not None:
            db += g.sum(0)
        gd = g.to(x.dtype)
        if dx is not None:
            dx[i0:i1] = (gd @ c.to(gd.dtype)).to(dx.dtype)
        if dc is not None:
            dc.addmm_(gd.T, x[i0:i1])
    return nll


class TokenChunkedLCE(torch.autograd.Function):
    """Returns the reduced loss (``mean``/``sum``) or the per-token loss (``none``)."""

    @staticmethod
    def forward(ctx, e2, c, bias, rows, tgt, softcap, reduction, chunk):
        acc = acc_dtype(e2.dtype)
        x = compute_operand(e2 if rows is None else e2.index_select(0, rows))
        k, v, d = x.shape[0], c.shape[0], c.shape[1]
        n = chunk or liger_token_chunk(k, v, d)
        need_de, need_dc, need_db = ctx.needs_input_grad[:3]
        ctx.opts = (softcap, reduction, n)
        if reduction == "none" or not (need_de or need_dc or need_db):
            nll = _chunk_grads(x, c, bias, tgt, softcap, None, acc, None, None, None, n)
            ctx.save_for_backward(e2, c, bias, rows, tgt)
            ctx.precomputed = False
            if reduction == "none":
                return nll
            # no input needs a gradient (an evaluation call): reduce as the gradient path below does
            return nll.mean() if reduction == "mean" else nll.sum()
        # gradients in the forward pass, weighted by the reduction (Liger's design)
        w = torch.tensor((1.0 / k if k else 0.0) if reduction == "mean" else 1.0, dtype=acc, device=x.device)
        dx = torch.empty(x.shape, dtype=e2.dtype, device=x.device) if need_de else None
        dc = torch.zeros(c.shape, dtype=x.dtype, device=c.device) if need_dc else None
        db = torch.zeros(v, dtype=acc, device=x.device) if need_db else None
        nll = _chunk_grads(x, c, bias, tgt, softcap, w, acc, dx, dc, db, n)
        de = None
        if dx is not None:
            de = dx if rows is None else torch.zeros_like(e2).index_copy_(0, rows, dx)
        ctx.save_for_backward(
            de, None if dc is None else dc.to(c.dtype), None if db is None else db.to(bias.dtype)
        )
        ctx.precomputed = True
        return nll.mean() if reduction == "mean" else nll.sum()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        softcap, reduction, n = ctx.opts
        if ctx.precomputed:
            de, dc, db = ctx.saved_tensors
            s = grad_out
            return (
                None if de is None else de * s.to(de.dtype),
                None if dc is None else dc * s.to(dc.dtype),
                None if db is None else db * s.to(db.dtype),
                None,
                None,
                None,
                None,
                None,
            )
        e2, c, bias, rows, tgt = ctx.saved_tensors
        need_de, need_dc, need_db = ctx.needs_input_grad[:3]
        acc = acc_dtype(e2.dtype)
        x = compute_operand(e2 if rows is None else e2.index_select(0, rows))
        dx = torch.empty(x.shape, dtype=e2.dtype, device=x.device) if need_de else None
        dc = torch.zeros(c.shape, dtype=x.dtype, device=c.device) if need_dc else None
        db = torch.zeros(c.shape[0], dtype=acc, device=x.device) if need_db else None
        _chunk_grads(x, c, bias, tgt, softcap, grad_out.to(acc), acc, dx, dc, db, n)
        de = None
        if dx is not None:
            de = dx if rows is None else torch.zeros_like(e2).index_copy_(0, rows, dx)
        dc = None if dc is None else dc.to(c.dtype)
        return de, dc, None if db is None else db.to(bias.dtype), None, None, None, None, None
