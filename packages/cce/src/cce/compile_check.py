"""Compile the CCE Triton kernels for an NVIDIA GPU without one (``python -m cce.compile_check``).

The interpreter tests check what the kernels compute; this checks that they *compile*: Triton
lowers each kernel, for the configs ``impl="triton"`` launches on a GPU, through TTIR, TTGIR,
LLVM IR and PTX to a cubin with the ptxas that ships in the triton wheel, for a chosen target
(default sm_90, the H100/H200).  It cannot say anything about speed or about races.
"""

from __future__ import annotations

import argparse
import os
import time


def _compile_all(arch: int, dtypes: list[str]) -> list[tuple[str, str, float, int]]:
    os.environ.pop("TRITON_INTERPRET", None)
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from xentlab.kernels import triton_lce as T

    if T.INTERPRET:
        raise SystemExit("run this in a process without TRITON_INTERPRET=1")
    cfg = T.TritonConfig()
    target = GPUTarget("cuda", arch, 32)
    out = []

    def build(fn, sig, consts, warps, stages, label, dt):
        sig = dict(sig, **{k: "constexpr" for k in consts})
        t0 = time.perf_counter()
        k = triton.compile(ASTSource(fn, sig, consts), target=target,
                           options={"num_warps": warps, "num_stages": stages})  # fmt: skip
        out.append((label, dt, time.perf_counter() - t0, k.metadata.shared))

    for dt in dtypes:
        p = "*" + dt
        prec = "ieee" if dt == "fp32" else "tf32"
        strides = {"stride_eb": "i64", "stride_ed": "i64", "stride_cv": "i64", "stride_cd": "i64"}
        fwd = dict(E=p, C=p, Bias=p, Rows="*i64", PartialLSE="*fp32", LogitSum="*fp32", K="i32", V="i32",
                   D="i32", softcap="fp32", v_blocks_per_split="i32", **strides)  # fmt: skip
        build(T._lse_forward_kernel, fwd,
              dict(BLOCK_B=cfg.fwd_block_b, BLOCK_V=cfg.fwd_block_v, BLOCK_D=cfg.fwd_block_d, HAS_ROWS=True,
                   HAS_BIAS=True, HAS_SOFTCAP=True, HAS_LOGIT_SUM=True, DOT_FP32=False, DOT_PRECISION=prec),
              cfg.fwd_warps, cfg.fwd_stages, "lse_forward", dt)  # fmt: skip
        dot = dict(E=p, C=p, Bias=p, Rows="*i64", Tgt="*i64", Out="*fp32", K="i32", D="i32", softcap="fp32",
                   **strides)  # fmt: skip
        build(T._target_logit_kernel, dot,
              dict(BLOCK_B=cfg.dot_block_b, BLOCK_D=cfg.dot_block_d, HAS_ROWS=True, HAS_BIAS=True,
                   HAS_SOFTCAP=True), 4, 1, "target_logit", dt)  # fmt: skip
        bwd = dict(E=p, C=p, Bias=p, LSE="*fp32", Rows="*i64", Tgt="*i64", dOut="*fp32", Order="*i32", dE=p,
                   dC=p, dBias="*fp32", dELocks="*i32", dCLocks="*i32", K="i32", V="i32", D="i32",
                   softcap="fp32", filter_eps="fp32", stride_deb="i64", stride_ded="i64", stride_dcv="i64",
                   stride_dcd="i64", **strides)  # fmt: skip
        build(T._lce_backward_kernel, bwd,
              dict(BLOCK_B=cfg.bwd_block_b, BLOCK_V=cfg.bwd_block_v, BLOCK_D=cfg.bwd_block_d,
                   GRAD_BLOCK_D=cfg.bwd_grad_block_d, GROUP_B=cfg.group_b, HAS_ROWS=True, HAS_BIAS=True,
                   HAS_SOFTCAP=True, HAS_ORDER=True, FILTER=True, COMPUTE_DE=True, COMPUTE_DC=True,
                   COMPUTE_DBIAS=True, DOT_FP32=False, DOT_PRECISION=prec),
              cfg.bwd_warps, cfg.bwd_stages, "backward", dt)  # fmt: skip
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", type=int, default=90, help="compute capability, e.g. 80 (A100), 90 (H100/H200)")
    ap.add_argument("--dtypes", nargs="+", default=["bf16", "fp16", "fp32"])
    a = ap.parse_args(argv)
    for label, dt, secs, smem in _compile_all(a.arch, a.dtypes):
        print(f"sm_{a.arch} {label:13s} {dt:5s} compiled to cubin in {secs:5.1f} s, shared memory {smem} B")


if __name__ == "__main__":
    main()
