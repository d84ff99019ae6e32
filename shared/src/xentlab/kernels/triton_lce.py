r"""Cut Cross-Entropy as Triton kernels (``impl="triton"``), annotated.

Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models", ICLR 2025 (arXiv 2411.09009).
Official kernels: apple/ml-cross-entropy.  This is an independent implementation of the same design.

Notation: E (K x D) the hidden states of the K tokens that count (``Rows`` indexes them in the
flattened input, so ignored tokens and the causal shift cost no copy), C (V x D) the classifier,
b (V) an optional bias, x_i the target of token i, s the optional softcap.

    z_ij = e_i . c_j + b_j,    z <- s tanh(z / s) if softcapped            (logits, never stored)
    l_i  = LSE_j z_ij - z_{i, x_i}                                          (Eq. 1)

Three kernels, none of which writes anything of size K x V to global memory:

1. ``_target_logit_kernel`` (Sec. 4.1, "indexed matrix multiplication"):
   z_{i,x_i} = sum_d E[i, d] C[x_i, d] (+ b_{x_i}), one program per block of tokens, fp32 sums.

2. ``_lse_forward_kernel`` (Sec. 4.2, Alg. 2): the program (token block, vocabulary split) walks
   its vocabulary blocks; for each it builds the tile A = E_blk C_blk^T in an fp32 accumulator
   (looping over D), adds the bias, softcaps, and folds the tile into a running log-sum-exp,

       m' = max(m, max_j A_ij),   l' = l e^{m - m'} + sum_j e^{A_ij - m'},   LSE_i = m + log l,

   the online softmax of flash attention.  The official kernel merges every tile into the global
   LSE under a spin lock; here each of a few vocabulary splits writes its own partial LSE and the
   host takes a logsumexp over the splits (flash-decoding's split-K), which is deterministic and
   lock-free.  With filtering on, the column sums of the tiles are atomically added into the mean
   logit per vocabulary entry, from which the backward's vocabulary order is sorted.

3. ``_lce_backward_kernel`` (Sec. 4.3, Alg. 3): one program per (token block, vocabulary block)
   tile, vocabulary blocks taken in the sorted order.  It recomputes A exactly as the forward did
   and forms

       S = exp(A - LSE),   G = S - onehot(x)                       (dl/dz, before upstream scaling)

   If every |G| in the tile is below ``filter_eps`` the program returns: the tile would not change
   dE or dC at the precision they are stored in (gradient filtering).  Otherwise

       G <- G * g_i * (1 - tanh^2(z/s))       g_i = dLoss/dl_i, softcap chain rule
       dE[blk] += G C_blk,   dC[blk] += G^T E_blk,   db[blk] += sum_i G_ij

   over D in slices, each slice added into dE / dC under a spin lock per (block, D-slice), as in
   the official kernel, so dE and dC are stored in the input dtype (G is cast to it first).

Interpreter notes (``TRITON_INTERPRET=1``, used by the CPU tests): bf16 ``tl.dot`` returns wrong
numbers there, so operands are cast to fp32 when interpreting bf16 (``DOT_FP32``); libdevice is
absent, so tanh is written with ``exp``; no autotuning (one config).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

# triton decides at decoration time whether a kernel is interpreted; remember that decision
try:
    INTERPRET = bool(triton.knobs.runtime.interpret)
except AttributeError:  # older triton
    INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


@dataclass(frozen=True)
class TritonConfig:
    """Block sizes.  Defaults on GPU are the official non-autotuned configs (forward BLOCK_B=256,
    BLOCK_V=128, BLOCK_D=32, 8 warps, 3 stages; backward 128/128/32, 4 warps, 4 stages, with the
    dE/dC update over D in slices of 2 * BLOCK_D).  The backward tile is also the filtering unit."""

    fwd_block_b: int = 256
    fwd_block_v: int = 128
    fwd_block_d: int = 32
    fwd_warps: int = 8
    fwd_stages: int = 3
    bwd_block_b: int = 128
    bwd_block_v: int = 128
    bwd_block_d: int = 32
    bwd_grad_block_d: int = 64
    bwd_warps: int = 4
    bwd_stages: int = 4
    group_b: int = 8
    dot_block_b: int = 64
    dot_block_d: int = 128
    splits: int | None = None  # vocabulary splits of the forward; None: enough programs to fill the GPU


# fmt: off
# (kernel signatures and launches are kept one concept per line, as the math reads)

# The interpreter runs programs one after another in Python: few programs with big blocks.
INTERPRETER_CONFIG = TritonConfig(
    fwd_block_b=128, fwd_block_v=128, fwd_block_d=128, bwd_block_b=128, bwd_block_v=128,
    bwd_block_d=128, bwd_grad_block_d=128, dot_block_b=128, dot_block_d=128, splits=1,
)


def default_config() -> TritonConfig:
    return INTERPRETER_CONFIG if INTERPRET else TritonConfig()


# ----------------------------------------------------------------------------------------------
# Small device helpers
# ----------------------------------------------------------------------------------------------


@triton.jit
def _tanh(x):
    # tanh(x) = 1 - 2 / (e^{2x} + 1): exact limits at +-inf; needs no libdevice (absent in the
    # interpreter).  Absolute error ~1e-7 near 0, times the softcap.
    return 1.0 - 2.0 / (tl.exp(2.0 * x) + 1.0)


@triton.jit
def _logit_tile(
    E, C, Bias, e_rows, row_ok, c_rows, col_ok, D, softcap,
    stride_eb, stride_ed, stride_cv, stride_cd,
    BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_BIAS: tl.constexpr, HAS_SOFTCAP: tl.constexpr, DOT_FP32: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    """A = E[e_rows] C[c_rows]^T (+ b) (softcapped), a (BLOCK_B, BLOCK_V) fp32 tile."""
    offs_d = tl.arange(0, BLOCK_D)
    e_ptrs = E + e_rows[:, None] * stride_eb + offs_d[None, :] * stride_ed  # (BLOCK_B, BLOCK_D)
    c_ptrs = C + c_rows[None, :] * stride_cv + offs_d[:, None] * stride_cd  # (BLOCK_D, BLOCK_V): C^T
    acc = tl.zeros((BLOCK_B, BLOCK_V), dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        d_ok = (d0 + offs_d) < D
        e = tl.load(e_ptrs, mask=row_ok[:, None] & d_ok[None, :], other=0.0)
        c = tl.load(c_ptrs, mask=d_ok[:, None] & col_ok[None, :], other=0.0)
        if DOT_FP32:
            e = e.to(tl.float32)
            c = c.to(tl.float32)
        # fp32 accumulator whatever the input dtype (Sec. 4.2: "no manual upcast needed")
        acc = tl.dot(e, c, acc, input_precision=DOT_PRECISION)
        e_ptrs += BLOCK_D * stride_ed
        c_ptrs += BLOCK_D * stride_cd
    if HAS_BIAS:
        b = tl.load(Bias + c_rows, mask=col_ok, other=0.0).to(tl.float32)
        acc += b[None, :]
    if HAS_SOFTCAP:
        acc = softcap * _tanh(acc / softcap)
    return acc


@triton.jit
def _locked_add(ptrs, val, mask, lock):
    """ptrs[mask] += val under a spin lock (read-modify-write of a whole slice, any dtype).
    The sum is formed in fp32 and rounded once to the storage dtype."""
    while tl.atomic_cas(lock, 0, 1) == 1:
        pass
    # ".cg": read through L2, not this SM's L1, which may hold a copy from before another
    # program's update
    cur = tl.load(ptrs, mask=mask, other=0.0, cache_modifier=".cg")
    tl.store(ptrs, (cur.to(tl.float32) + val).to(ptrs.dtype.element_ty), mask=mask)
    tl.debug_barrier()  # every thread's store is done before the lock is released
    tl.atomic_xchg(lock, 0)


# ----------------------------------------------------------------------------------------------
# 1. Indexed dot: the target logit
# ----------------------------------------------------------------------------------------------


@triton.jit
def _target_logit_kernel(
    E, C, Bias, Rows, Tgt, Out, K, D, softcap,
    stride_eb, stride_ed, stride_cv, stride_cd,
    BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_ROWS: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_SOFTCAP: tl.constexpr,
):
    pid = tl.program_id(0)
    offs_k = pid * BLOCK_B + tl.arange(0, BLOCK_B)
    k_ok = offs_k < K
    if HAS_ROWS:
        rows = tl.load(Rows + offs_k, mask=k_ok, other=0).to(tl.int64)
    else:
        rows = offs_k.to(tl.int64)
    tgt = tl.load(Tgt + offs_k, mask=k_ok, other=0).to(tl.int64)
    offs_d = tl.arange(0, BLOCK_D)
    acc = tl.zeros((BLOCK_B,), dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        m = k_ok[:, None] & ((d0 + offs_d) < D)[None, :]
        e = tl.load(E + rows[:, None] * stride_eb + (d0 + offs_d)[None, :] * stride_ed, mask=m, other=0.0)
        c = tl.load(C + tgt[:, None] * stride_cv + (d0 + offs_d)[None, :] * stride_cd, mask=m, other=0.0)
        acc += tl.sum(e.to(tl.float32) * c.to(tl.float32), 1)  # z_{i,x_i} = sum_d e_id c_{x_i d}
    if HAS_BIAS:
        acc += tl.load(Bias + tgt, mask=k_ok, other=0.0).to(tl.float32)
    if HAS_SOFTCAP:
        acc = softcap * _tanh(acc / softcap)
    tl.store(Out + offs_k, acc, mask=k_ok)


# ----------------------------------------------------------------------------------------------
# 2. Blockwise log-sum-exp (forward)
# ----------------------------------------------------------------------------------------------


@triton.jit
def _lse_forward_kernel(
    E, C, Bias, Rows, PartialLSE, LogitSum, K, V, D, softcap, v_blocks_per_split,
    stride_eb, stride_ed, stride_cv, stride_cd,
    BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_ROWS: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_SOFTCAP: tl.constexpr, HAS_LOGIT_SUM: tl.constexpr,
    DOT_FP32: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    pid_b = tl.program_id(0)
    pid_s = tl.program_id(1)
    offs_k = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    k_ok = offs_k < K
    if HAS_ROWS:
        rows = tl.load(Rows + offs_k, mask=k_ok, other=0).to(tl.int64)
    else:
        rows = offs_k.to(tl.int64)

    m = tl.full((BLOCK_B,), float("-inf"), tl.float32)  # running max
    l = tl.zeros((BLOCK_B,), dtype=tl.float32)  # running sum of e^{A - m}
    vb0 = pid_s * v_blocks_per_split
    vb1 = tl.minimum(vb0 + v_blocks_per_split, tl.cdiv(V, BLOCK_V))
    for vb in range(vb0, vb1):
        offs_v = vb * BLOCK_V + tl.arange(0, BLOCK_V)
        v_ok = offs_v < V
        a = _logit_tile(
            E, C, Bias, rows, k_ok, offs_v.to(tl.int64), v_ok, D, softcap,
            stride_eb, stride_ed, stride_cv, stride_cd,
            BLOCK_B, BLOCK_V, BLOCK_D, HAS_BIAS, HAS_SOFTCAP, DOT_FP32, DOT_PRECISION,
        )
        a = tl.where(v_ok[None, :], a, float("-inf"))  # columns past V do not exist
        if HAS_LOGIT_SUM:
            # sum_i A_ij over the real tokens, for the mean logit that orders the backward
            tl.atomic_add(LogitSum + offs_v, tl.sum(tl.where(k_ok[:, None], a, 0.0), 0), mask=v_ok)
        # online log-sum-exp
        m_new = tl.maximum(m, tl.max(a, 1))
        l = l * tl.exp(m - m_new) + tl.sum(tl.exp(a - m_new[:, None]), 1)
        m = m_new
    tl.store(PartialLSE + pid_s * K + offs_k, m + tl.log(l), mask=k_ok)


# ----------------------------------------------------------------------------------------------
# 3. Backward with gradient filtering and sorted vocabulary
# ----------------------------------------------------------------------------------------------


@triton.jit
def _lce_backward_kernel(
    E, C, Bias, LSE, Rows, Tgt, dOut, Order, dE, dC, dBias, dELocks, dCLocks,
    K, V, D, softcap, filter_eps,
    stride_eb, stride_ed, stride_cv, stride_cd, stride_deb, stride_ded, stride_dcv, stride_dcd,
    BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr, GRAD_BLOCK_D: tl.constexpr,
    GROUP_B: tl.constexpr,
    HAS_ROWS: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_SOFTCAP: tl.constexpr, HAS_ORDER: tl.constexpr,
    FILTER: tl.constexpr, COMPUTE_DE: tl.constexpr, COMPUTE_DC: tl.constexpr, COMPUTE_DBIAS: tl.constexpr,
    DOT_FP32: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    # Grouped launch order: GROUP_B consecutive token blocks visit a vocabulary block one after
    # another, so its C tile is reused from L2 (the ordering of Triton's matmul tutorial).
    pid = tl.program_id(0)
    n_b = tl.cdiv(K, BLOCK_B)
    n_v = tl.cdiv(V, BLOCK_V)
    per_group = GROUP_B * n_v
    first_b = (pid // per_group) * GROUP_B
    size_b = tl.minimum(n_b - first_b, GROUP_B)
    pid_b = first_b + (pid % per_group) % size_b
    pid_v = (pid % per_group) // size_b

    offs_k = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    k_ok = offs_k < K
    if HAS_ROWS:
        rows = tl.load(Rows + offs_k, mask=k_ok, other=0).to(tl.int64)
    else:
        rows = offs_k.to(tl.int64)
    pos_v = pid_v * BLOCK_V + tl.arange(0, BLOCK_V)
    v_ok = pos_v < V
    if HAS_ORDER:  # the vocabulary in ascending order of its mean logit
        cols = tl.load(Order + pos_v, mask=v_ok, other=0).to(tl.int64)
    else:
        cols = pos_v.to(tl.int64)

    a = _logit_tile(
        E, C, Bias, rows, k_ok, cols, v_ok, D, softcap,
        stride_eb, stride_ed, stride_cv, stride_cd,
        BLOCK_B, BLOCK_V, BLOCK_D, HAS_BIAS, HAS_SOFTCAP, DOT_FP32, DOT_PRECISION,
    )
    lse = tl.load(LSE + offs_k, mask=k_ok, other=float("inf"))  # padded rows: S = e^{-inf} = 0
    s = tl.exp(a - lse[:, None])
    s = tl.where(v_ok[None, :], s, 0.0)
    tgt = tl.load(Tgt + offs_k, mask=k_ok, other=-1).to(tl.int64)
    g = s - tl.where((tgt[:, None] == cols[None, :]) & v_ok[None, :], 1.0, 0.0)  # S - onehot

    if FILTER:
        # the whole tile is below the precision of the accumulation: skip dE and dC (Sec. 4.3)
        if tl.max(tl.max(tl.abs(g), 1), 0) < filter_eps:
            return

    g = g * tl.load(dOut + offs_k, mask=k_ok, other=0.0)[:, None]
    if HAS_SOFTCAP:
        t = a / softcap  # a is already capped: a / s = tanh(z / s)
        g = g * (1.0 - t * t)
    if COMPUTE_DBIAS:
        tl.atomic_add(dBias + cols, tl.sum(g, 0), mask=v_ok)
    if DOT_FP32:
        gm = g
    else:
        gm = g.to(E.dtype.element_ty)  # the official kernel multiplies in the input dtype

    offs_d = tl.arange(0, GRAD_BLOCK_D)
    n_d = tl.cdiv(D, GRAD_BLOCK_D)
    for di in range(0, n_d):
        d = di * GRAD_BLOCK_D + offs_d
        d_ok = d < D
        if COMPUTE_DE:
            # dE[rows, d] += G C[cols, d]
            c = tl.load(C + cols[:, None] * stride_cv + d[None, :] * stride_cd,
                        mask=v_ok[:, None] & d_ok[None, :], other=0.0)
            if DOT_FP32:
                c = c.to(tl.float32)
            de = tl.dot(gm, c, input_precision=DOT_PRECISION)
            _locked_add(dE + rows[:, None] * stride_deb + d[None, :] * stride_ded, de,
                        k_ok[:, None] & d_ok[None, :], dELocks + pid_b * n_d + di)
        if COMPUTE_DC:
            # dC[cols, d] += G^T E[rows, d]
            e = tl.load(E + rows[:, None] * stride_eb + d[None, :] * stride_ed,
                        mask=k_ok[:, None] & d_ok[None, :], other=0.0)
            if DOT_FP32:
                e = e.to(tl.float32)
            dc = tl.dot(tl.trans(gm), e, input_precision=DOT_PRECISION)
            _locked_add(dC + cols[:, None] * stride_dcv + d[None, :] * stride_dcd, dc,
                        v_ok[:, None] & d_ok[None, :], dCLocks + pid_v * n_d + di)


# ----------------------------------------------------------------------------------------------
# Host side
# ----------------------------------------------------------------------------------------------


def _dot_options(dtype: torch.dtype) -> tuple[bool, str]:
    dot_fp32 = INTERPRET and dtype == torch.bfloat16
    if dtype == torch.float32 or dot_fp32:
        # fp32 inputs: TF32 only when the user allowed it for matmuls (as the official kernels)
        return dot_fp32, "tf32" if torch.get_float32_matmul_precision() == "high" else "ieee"
    return dot_fp32, "tf32"  # ignored for fp16/bf16 operands (the default value)


def _num_splits(cfg: TritonConfig, n_b: int, n_v: int, device: torch.device) -> int:
    if cfg.splits is not None:
        want = cfg.splits
    elif device.type == "cuda":
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        want = -(-4 * sms // n_b)  # about four programs per SM
    else:
        want = 1
    return max(1, min(want, n_v))


def lse_forward(e2, c, bias, rows, softcap, want_logit_sum, cfg):
    k = e2.shape[0] if rows is None else rows.numel()
    v, d = c.shape
    n_b, n_v = triton.cdiv(k, cfg.fwd_block_b), triton.cdiv(v, cfg.fwd_block_v)
    splits = _num_splits(cfg, n_b, n_v, e2.device)
    per = triton.cdiv(n_v, splits)
    splits = triton.cdiv(n_v, per)  # no empty split
    partial = torch.empty((splits, k), dtype=torch.float32, device=e2.device)
    logit_sum = torch.zeros(v, dtype=torch.float32, device=e2.device) if want_logit_sum else None
    dot_fp32, prec = _dot_options(e2.dtype)
    _lse_forward_kernel[(n_b, splits)](
        e2, c, bias, rows, partial, logit_sum, k, v, d, softcap, per,
        e2.stride(0), e2.stride(1), c.stride(0), c.stride(1),
        BLOCK_B=cfg.fwd_block_b, BLOCK_V=cfg.fwd_block_v, BLOCK_D=cfg.fwd_block_d,
        HAS_ROWS=rows is not None, HAS_BIAS=bias is not None, HAS_SOFTCAP=softcap is not None,
        HAS_LOGIT_SUM=want_logit_sum, DOT_FP32=dot_fp32, DOT_PRECISION=prec,
        num_warps=cfg.fwd_warps, num_stages=cfg.fwd_stages,
    )
    lse = partial[0] if splits == 1 else torch.logsumexp(partial, 0)
    return lse, logit_sum


def target_logit(e2, c, bias, rows, tgt, softcap, cfg):
    k = tgt.numel()
    out = torch.empty(k, dtype=torch.float32, device=e2.device)
    _target_logit_kernel[(triton.cdiv(k, cfg.dot_block_b),)](
        e2, c, bias, rows, tgt, out, k, e2.shape[1], softcap,
        e2.stride(0), e2.stride(1), c.stride(0), c.stride(1),
        BLOCK_B=cfg.dot_block_b, BLOCK_D=cfg.dot_block_d,
        HAS_ROWS=rows is not None, HAS_BIAS=bias is not None, HAS_SOFTCAP=softcap is not None,
    )
    return out


def lce_backward(e2, c, bias, rows, tgt, lse, d_nll, order, softcap, filter_eps, need, cfg):
    need_de, need_dc, need_db = need
    k = tgt.numel()
    v, d = c.shape
    de = torch.zeros_like(e2) if need_de else None
    dc = torch.zeros((v, d), dtype=c.dtype, device=c.device) if need_dc else None
    db = torch.zeros(v, dtype=torch.float32, device=c.device) if need_db else None
    n_b, n_v = triton.cdiv(k, cfg.bwd_block_b), triton.cdiv(v, cfg.bwd_block_v)
    n_d = triton.cdiv(d, cfg.bwd_grad_block_d)
    de_locks = torch.zeros((n_b, n_d), dtype=torch.int32, device=e2.device)
    dc_locks = torch.zeros((n_v, n_d), dtype=torch.int32, device=e2.device)
    dot_fp32, prec = _dot_options(e2.dtype)
    dummy = lse  # a valid pointer for outputs that are not computed (never dereferenced)
    _lce_backward_kernel[(n_b * n_v,)](
        e2, c, bias, lse, rows, tgt, d_nll, order,
        dummy if de is None else de, dummy if dc is None else dc, dummy if db is None else db,
        de_locks, dc_locks,
        k, v, d, softcap, 0.0 if filter_eps is None else filter_eps,
        e2.stride(0), e2.stride(1), c.stride(0), c.stride(1),
        e2.stride(0), e2.stride(1), d, 1,
        BLOCK_B=cfg.bwd_block_b, BLOCK_V=cfg.bwd_block_v, BLOCK_D=cfg.bwd_block_d,
        GRAD_BLOCK_D=cfg.bwd_grad_block_d, GROUP_B=cfg.group_b,
        HAS_ROWS=rows is not None, HAS_BIAS=bias is not None, HAS_SOFTCAP=softcap is not None,
        HAS_ORDER=order is not None, FILTER=filter_eps is not None,
        COMPUTE_DE=need_de, COMPUTE_DC=need_dc, COMPUTE_DBIAS=need_db,
        DOT_FP32=dot_fp32, DOT_PRECISION=prec,
        num_warps=cfg.bwd_warps, num_stages=cfg.bwd_stages,
    )
    return de, dc, None if db is None else db.to(bias.dtype)


class TritonLCE(torch.autograd.Function):
    """Per-token loss l_i (float32, shape (K,)) of the selected rows of ``e2``."""

    @staticmethod
    def forward(ctx, e2, c, bias, rows, tgt, softcap, filter_eps, sort_vocab, cfg):
        k = tgt.numel()
        needs_grad = any(ctx.needs_input_grad[:3])
        want_order = needs_grad and filter_eps is not None and sort_vocab and k > 0
        if k == 0:
            lse = torch.empty(0, dtype=torch.float32, device=e2.device)
            nll, logit_sum = lse.clone(), None
        else:
            lse, logit_sum = lse_forward(e2, c, bias, rows, softcap, want_order, cfg)
            nll = lse - target_logit(e2, c, bias, rows, tgt, softcap, cfg)
        ctx.save_for_backward(e2, c, bias, rows, tgt, lse, logit_sum)
        ctx.opts = (softcap, filter_eps, cfg)
        return nll

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_nll):
        e2, c, bias, rows, tgt, lse, logit_sum = ctx.saved_tensors
        softcap, filter_eps, cfg = ctx.opts
        need = tuple(ctx.needs_input_grad[:3])
        if tgt.numel() == 0:
            de = torch.zeros_like(e2) if need[0] else None
            dc = torch.zeros_like(c) if need[1] else None
            db = torch.zeros_like(bias) if need[2] else None
            return de, dc, db, None, None, None, None, None, None
        # ascending mean logit (the sum has the same order); int32 is enough for any vocabulary
        order = None if logit_sum is None else torch.argsort(logit_sum).to(torch.int32)
        de, dc, db = lce_backward(
            e2, c, bias, rows, tgt, lse, d_nll.contiguous().float(), order, softcap, filter_eps, need, cfg
        )
        return de, dc, db, None, None, None, None, None, None


def check_device(e: torch.Tensor) -> None:
    if e.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"impl='triton' supports float16, bfloat16 and float32 inputs, got {e.dtype}")
    if e.device.type == "cuda":
        if INTERPRET:
            raise RuntimeError("impl='triton' was loaded with TRITON_INTERPRET=1 and cannot run CUDA tensors")
        return
    if e.device.type == "cpu":
        if not INTERPRET:
            raise RuntimeError(
                "impl='triton' on CPU tensors needs the Triton interpreter: set TRITON_INTERPRET=1 before "
                "xentlab.kernels.triton_lce is first imported (or use impl='torch')"
            )
        return
    raise RuntimeError(f"impl='triton' supports CUDA tensors (or CPU under TRITON_INTERPRET=1), got {e.device}")
# fmt: on
