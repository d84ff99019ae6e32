r"""Cut Cross-Entropy in plain PyTorch, chunked over the vocabulary (``impl="torch"``).

Notation (paper Sec. 3): E (K x D) holds the hidden states of the K tokens that count, C (V x D)
the classifier, b (V) an optional bias, x_i the target of token i.  The logits and the loss are

    z_ij = e_i . c_j + b_j            (optionally softcapped: z <- s tanh(z / s))
    l_i  = LSE_j(z_ij) - z_{i, x_i}   (Eq. 1-2)

CCE never stores the K x V matrix z.  This module runs the same algorithm as the Triton kernels,
one vocabulary chunk of W columns at a time, so the transient memory is K x W floats whatever V
(W ~ 2^20 / K by default):

* forward (Sec. 4.2, "blockwise LSE"):
      LSE_i = logaddexp over chunks of  logsumexp_{j in chunk} z_ij      (float32 running value)
  and the target logit by an indexed dot  z_{i,x_i} = e_i . c_{x_i} (+ b_{x_i})  (Sec. 4.1);
* backward (Sec. 4.3), recomputing each chunk of z:
      S_ij = exp(z_ij - LSE_i)                    softmax, never stored beyond one chunk
      G_ij = (S_ij - [j == x_i]) * g_i            g_i = dLoss/dl_i
      G   *= 1 - tanh^2(z / s)                    softcap chain rule, applied to G
      dE  += G C_chunk,  dC_chunk = G^T E,  db_chunk = sum_i G_ij
  with the tiles of (S - onehot) below ``filter_eps`` zeroed (gradient filtering) and the
  vocabulary walked in sorted order of its mean logit, exactly as the Triton backward does.

Precision: logits use an fp32 accumulator for every input dtype (float64 for float64 inputs);
dE is accumulated over chunks in fp32; every row of dC is written once, from one matmul.
"""

from __future__ import annotations

import torch

from xentlab.data.cache import source_digest
from xentlab.kernels.filtering import FILTER_BLOCK_V, apply_tile_mask, tile_keep_mask, vocab_order

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""

# A chunk's logits are K x W floats; W is chosen so that this stays near 1M elements (4 MB in
# float32) and is a multiple of the filter tile width, so tiles are the kernel's tiles.
CHUNK_ELEMENTS = 1 << 20


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulate in float32 (float64 for float64 inputs): the paper's fp32 accumulator."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def default_vocab_chunk(k: int, v: int) -> int:
    w = max(FILTER_BLOCK_V, (CHUNK_ELEMENTS // max(k, 1)) // FILTER_BLOCK_V * FILTER_BLOCK_V)
    return min(w, -(-v // FILTER_BLOCK_V) * FILTER_BLOCK_V)


def compute_operand(x: torch.Tensor) -> torch.Tensor:
    """The operand the matmuls read.  On CUDA, fp16/bf16 stay as they are and the products are
    formed with an fp32 output (``mm(out_dtype=float32)``, tensor cores with fp32 accumulation, as
    the kernels' ``tl.dot``).  Elsewhere half inputs are upcast once: the product of two fp16 or
    bf16 numbers is exact in fp32, so this is the same fp32 accumulation."""
    acc = acc_dtype(x.dtype)
    return x if (x.dtype == acc or x.is_cuda) else x.to(acc)


def mm_acc(a: torch.Tensor, b: torch.Tensor, acc: torch.dtype) -> torch.Tensor:
    """a @ b with an ``acc`` result; operands in a's dtype."""
    b = b.to(a.dtype)
    if a.dtype == acc:
        return a @ b
    try:
        return torch.mm(a, b, out_dtype=acc)
    except (RuntimeError, TypeError, NotImplementedError):  # no mm(out_dtype) for this backend/version
        return (a @ b).to(acc)


def chunk_logits(x, c_chunk, bias_chunk, softcap, acc):
    """z = x c_chunk^T (+ b) with an fp32 accumulator (Sec. 4.2), softcapped.  ``x`` is a
    :func:`compute_operand`."""
    z = mm_acc(x, c_chunk.T, acc)
    if bias_chunk is not None:
        z += bias_chunk.to(acc)
    if softcap is not None:
        z = torch.tanh_(z.div_(softcap)).mul_(softcap)
    return z


def target_logit(x, c, bias, tgt, softcap, acc):
    """Indexed dot z_{i,x_i} = e_i . c_{x_i} (+ b_{x_i}) in the accumulator dtype (Sec. 4.1)."""
    zt = torch.einsum("kd,kd->k", x.to(acc), c.index_select(0, tgt).to(acc))
    if bias is not None:
        zt += bias.index_select(0, tgt).to(acc)
    if softcap is not None:
        zt = softcap * torch.tanh(zt / softcap)
    return zt


class VocabChunkedLCE(torch.autograd.Function):
    """Per-token loss l_i (float32/float64, shape (K,)) of the selected rows of ``e2``."""

    @staticmethod
    def forward(ctx, e2, c, bias, rows, tgt, softcap, filter_eps, sort_vocab, chunk):
        acc = acc_dtype(e2.dtype)
        x = compute_operand(e2 if rows is None else e2.index_select(0, rows))
        k, v = x.shape[0], c.shape[0]
        chunk = chunk or default_vocab_chunk(k, v)
        needs_grad = any(ctx.needs_input_grad[:3])
        # the mean logit per vocabulary entry, for the sorted walk of the backward
        want_order = needs_grad and filter_eps is not None and sort_vocab and k > 0
        logit_sum = torch.zeros(v, dtype=acc, device=x.device) if want_order else None

        lse = torch.full((k,), float("-inf"), dtype=acc, device=x.device)
        for v0 in range(0, v, chunk):
            v1 = min(v0 + chunk, v)
            z = chunk_logits(x, c[v0:v1], None if bias is None else bias[v0:v1], softcap, acc)
            if want_order:
                logit_sum[v0:v1] = z.sum(0)
            # logsumexp of this chunk, in place: m + log sum exp(z - m)
            m = z.amax(1)
            s = z.sub_(m[:, None]).exp_().sum(1)
            lse = torch.logaddexp(lse, m + s.log())
            del z
        nll = lse - target_logit(x, c, bias, tgt, softcap, acc)

        order = vocab_order(logit_sum) if want_order else None
        ctx.save_for_backward(e2, c, bias, rows, tgt, lse, order)
        ctx.opts = (softcap, filter_eps, chunk)
        return nll

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_nll):
        e2, c, bias, rows, tgt, lse, order = ctx.saved_tensors
        softcap, filter_eps, chunk = ctx.opts
        need_de, need_dc, need_db = ctx.needs_input_grad[:3]
        acc = lse.dtype
        x = compute_operand(e2 if rows is None else e2.index_select(0, rows))
        k, v = x.shape[0], c.shape[0]
        g_nll = g_nll.to(acc)

        dx = torch.zeros(x.shape, dtype=acc, device=x.device) if need_de else None
        dc = torch.zeros_like(c, memory_format=torch.contiguous_format) if need_dc else None
        db = torch.zeros(v, dtype=acc, device=x.device) if need_db else None
        # position of each target in the walk order (identity when unsorted)
        if order is not None:
            rank = torch.empty_like(order)
            rank[order] = torch.arange(v, device=order.device)
            tpos = rank[tgt]
        else:
            tpos = tgt

        for v0 in range(0, v if k else 0, chunk):
            v1 = min(v0 + chunk, v)
            idx = None if order is None else order[v0:v1]
            cc = c[v0:v1] if idx is None else c.index_select(0, idx)
            bc = None if bias is None else (bias[v0:v1] if idx is None else bias.index_select(0, idx))
            z = chunk_logits(x, cc, bc, softcap, acc)
            # softcap chain rule factor, taken from the capped logits before z is overwritten
            dcap = None if softcap is None else 1 - (z / softcap).square_()
            g = z.sub_(lse[:, None]).exp_()  # S = softmax, in place
            hit = ((tpos >= v0) & (tpos < v1)).nonzero().squeeze(1)
            g[hit, tpos[hit] - v0] -= 1  # S - onehot
            if filter_eps is not None:
                keep = tile_keep_mask(g, filter_eps)
                if not keep.any():
                    continue  # every tile below eps: skip both matmuls (Sec. 4.3)
                if not keep.all():
                    apply_tile_mask(g, keep)
            g.mul_(g_nll[:, None])
            if dcap is not None:
                g.mul_(dcap)
            if db is not None:
                if idx is None:
                    db[v0:v1] = g.sum(0)
                else:
                    db[idx] = g.sum(0)
            gd = g.to(x.dtype)  # on CUDA half inputs: G in the input dtype, as the official kernel
            if dx is not None:
                if acc == x.dtype:
                    dx.addmm_(gd, cc.to(acc))
                else:
                    dx += mm_acc(gd, cc, acc)
            if dc is not None:
                if idx is None and dc.dtype == x.dtype:
                    torch.mm(gd.T, x, out=dc[v0:v1])
                elif idx is None:
                    dc[v0:v1] = gd.T @ x
                else:
                    dc[idx] = (gd.T @ x).to(dc.dtype)
            del z, g, gd

        de = None
        if dx is not None:
            if rows is None:
                de = dx.to(e2.dtype)
            else:
                de = torch.zeros_like(e2)
                de.index_copy_(0, rows, dx.to(e2.dtype))
        if db is not None:
            db = db.to(bias.dtype)
        return de, dc, db, None, None, None, None, None, None
