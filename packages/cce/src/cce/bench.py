"""Memory and time of linear cross-entropy implementations (the paper's Table 1, scaled).

Every method is measured in a fresh Python process (``python -m cce.bench ...``) so that no
allocator cache, compiled graph or retained tensor of another method distorts its numbers.  In
that process, for each vocabulary size in ascending order:

1. inputs: e = randn(N, D)/sqrt(D), c = randn(V, D), uniform random targets (the official
   benchmark's ``randn`` data), leaves that require grad;
2. for compiled methods and on CUDA, one warm-up forward+backward, then free everything (eager
   CPU methods are measured from their first call: nothing is lazily initialised there);
3. memory: on CPU the peak resident set size above the level just before the loss, read from
   /proc (VmHWM, reset through /proc/self/clear_refs) after ``malloc_trim`` has returned freed
   heap pages; on CUDA ``max_memory_allocated`` above ``memory_allocated`` (the paper's method).
   "fw" is the peak while computing the loss (what the forward keeps for the backward plus its
   transients: the paper's "Loss" column); "fwbw" the peak through forward and backward, which
   includes dE and dC themselves (the paper's "Loss+Gradient" column, lower bound (N + V) D);
4. time: the median over ``reps`` runs of forward and of backward (CUDA events on GPU);
5. accuracy: on the first ``sub`` tokens, max |dE|, |dC| error against float64, and the loss.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

CPU_METHODS = ("naive", "torch_compile", "token_chunks", "cce_torch", "official_cpu")
# Table 1's own rows first: a run cut short by a lent GPU's time limit still has them (each
# method's numbers are logged as soon as they exist), the ablations and the PyTorch paths after.
GPU_METHODS = (
    "naive",
    "cce_triton",
    "torch_compile",
    "official_cce",
    "liger",
    "token_chunks",
    "cce_triton_exact",
    "cce_triton_nosort",
    "official_cce_exact",
    "cce_torch",
)
COMPILED = ("torch_compile", "official_cpu")
LABELS = {
    "naive": "naive torch CE",
    "torch_compile": "torch.compile(naive)",
    "token_chunks": "token chunks (Liger-style, ours)",
    "cce_torch": "CCE, PyTorch path (ours)",
    "cce_triton": "CCE, Triton (ours)",
    "cce_triton_exact": "CCE exact, Triton (ours)",
    "cce_triton_nosort": "CCE no vocab sort, Triton (ours)",
    "official_cpu": "cut-cross-entropy torch_compile",
    "official_cce": "cut-cross-entropy cce",
    "official_cce_exact": "cut-cross-entropy cce_exact",
    "liger": "Liger-Kernel FLCE",
}


def naive_loss(e, c, t):
    # the paper's baseline: materialise the logits, upcast, cross-entropy
    return F.cross_entropy((e @ c.T).float(), t)


def make_method(name: str):
    """(e, c, t) -> mean loss, for ``name``; raises ImportError when a package is missing."""
    if name == "naive":
        return naive_loss
    if name == "torch_compile":
        return torch.compile(naive_loss, dynamic=True)
    if name.startswith("cce_") or name == "token_chunks":
        from xentlab.kernels import linear_cross_entropy

        kw = {
            "token_chunks": {"impl": "torch_token_chunks"},
            "cce_torch": {"impl": "torch"},
            "cce_triton": {"impl": "triton"},
            "cce_triton_exact": {"impl": "triton", "filter_eps": None},
            "cce_triton_nosort": {"impl": "triton", "sort_vocab": False},
        }[name]
        return lambda e, c, t: linear_cross_entropy(e, c, t, **kw)
    if name.startswith("official_"):
        from cut_cross_entropy import linear_cross_entropy as official

        # The pinned release (PyPI 25.1.1, what the GPU tier installs) knows impl "cce" and
        # "torch_compile" only; GitHub HEAD's impl="cce_exact" preset is, in both versions,
        # impl="cce" with filter_eps=None (no gradient filtering; HEAD's preset adds Kahan sums).
        kw = {
            "official_cpu": {"impl": "torch_compile"},
            "official_cce": {"impl": "cce"},
            "official_cce_exact": {"impl": "cce", "filter_eps": None},
        }[name]
        return lambda e, c, t: official(e, c, t, **kw)
    if name == "liger":
        from liger_kernel.transformers.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyLoss

        fn = LigerFusedLinearCrossEntropyLoss()
        return lambda e, c, t: fn(c, e, t)  # Liger takes (weight, input, target)
    raise ValueError(f"unknown method {name!r}")


# --- memory probes --------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1))


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


class MemProbe:
    """Peak memory above a baseline: RSS high-water mark on CPU, the allocator's peak on CUDA."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def start(self) -> None:
        _trim()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
            self.base = _status_kb("VmRSS") * 1024

    def peak_mb(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - self.base) / 2**20
        return (_status_kb("VmHWM") * 1024 - self.base) / 2**20


class Timer:
    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def mark(self):
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def ms(self, a, b) -> float:
        if self.cuda:
            b.synchronize()
            return a.elapsed_time(b)
        return (b - a) * 1e3


# --- one method, all vocabulary sizes -------------------------------------------------------


def _inputs(n, d, v, dtype, device, seed):
    g = torch.Generator(device="cpu").manual_seed(seed)
    e = (torch.randn(n, d, generator=g) / math.sqrt(d)).to(device, dtype).requires_grad_()
    c = torch.randn(v, d, generator=g).to(device, dtype).requires_grad_()
    t = torch.randint(0, v, (n,), generator=g).to(device)
    return e, c, t


def _grad_error(fn, e, c, t, sub):
    """Max abs error of the loss and of dE, dC on the first ``sub`` tokens against float64."""
    es = e.detach()[:sub].clone().requires_grad_()
    cs = c.detach().clone().requires_grad_()
    loss = fn(es, cs, t[:sub])
    loss.backward()
    e64 = es.detach().double().requires_grad_()
    c64 = cs.detach().double().requires_grad_()
    ref = F.cross_entropy(e64 @ c64.T, t[:sub])
    ref.backward()
    return {
        "loss_err": abs(loss.item() - ref.item()),
        "de_err": (es.grad.double() - e64.grad).abs().max().item(),
        "dc_err": (cs.grad.double() - c64.grad).abs().max().item(),
        "grad_scale": max(e64.grad.abs().max().item(), c64.grad.abs().max().item()),
    }


def measure(method, n, d, vs, dtype, device, seed, reps, sub):
    fn = make_method(method)
    probe, timer = MemProbe(device), Timer(device)
    # a small call first: thread pools, allocator arenas and kernel caches are set up lazily, and
    # would otherwise be charged to the first measured V
    e, c, t = _inputs(min(n, 64), d, 256, dtype, device, seed)
    fn(e, c, t).backward()
    del e, c, t
    rows = []
    for v in vs:
        e, c, t = _inputs(n, d, v, dtype, device, seed)
        warm_s = 0.0
        if device.type == "cuda" or method in COMPILED:
            t0 = time.perf_counter()
            fn(e, c, t).backward()  # warm-up: compilation, CUDA/Triton initialisation
            warm_s = time.perf_counter() - t0
            e.grad = c.grad = None

        probe.start()
        loss = fn(e, c, t)
        fw_mb = probe.peak_mb()
        loss.backward()
        fwbw_mb = probe.peak_mb()
        loss_value = loss.item()
        del loss
        e.grad = c.grad = None

        fw, bw = [], []
        for _ in range(reps):
            a = timer.mark()
            loss = fn(e, c, t)
            b = timer.mark()
            loss.backward()
            z = timer.mark()
            fw.append(timer.ms(a, b))
            bw.append(timer.ms(b, z))
            del loss
            e.grad = c.grad = None
        row = {
            "method": method,
            "n": n,
            "d": d,
            "v": v,
            "dtype": str(dtype).replace("torch.", ""),
            "fw_mb": fw_mb,
            "fwbw_mb": fwbw_mb,
            "lower_bound_mb": (n + v) * d * e.element_size() / 2**20,
            "fw_ms": statistics.median(fw),
            "bw_ms": statistics.median(bw),
            "fwbw_ms": statistics.median([a + b for a, b in zip(fw, bw)]),
            "warmup_s": warm_s,
            "loss": loss_value,
        }
        row.update(_grad_error(fn, e, c, t, sub))
        rows.append(row)
        del e, c, t
        _trim()
    return rows


def run_fresh(method, n, d, vs, dtype="float32", device="cpu", seed=0, reps=3, sub=128, timeout=900):
    """Measure ``method`` in a new Python process; returns its rows, or one row with ``error``
    (also when it runs past ``timeout`` seconds: the child is killed)."""
    cmd = [sys.executable, "-m", "cce.bench", "--method", method, "--n", str(n), "--d", str(d),
           "--dtype", dtype, "--device", device, "--seed", str(seed), "--reps", str(reps), "--sub", str(sub),
           "--vs", *map(str, vs)]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    env.pop("TRITON_INTERPRET", None)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        # subprocess.run has killed the child: one hung method (a lock that never opens, a compile
        # that never ends) costs its own row, not the unit and the methods after it
        tail = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        last = (tail.strip().splitlines() or [""])[-1]
        return [{"method": method, "error": f"timeout after {timeout} s; last stderr line: {last[-240:]}"}]
    for line in reversed(p.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)["rows"]
    err = (p.stderr.strip().splitlines() or ["no output"])[-1]
    return [{"method": method, "error": err[-300:]}]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--d", type=int, required=True)
    ap.add_argument("--vs", type=int, nargs="+", required=True)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sub", type=int, default=128)
    a = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if a.device == "cuda" and torch.get_float32_matmul_precision() == "highest":
        torch.set_float32_matmul_precision("high")
    rows = measure(
        a.method, a.n, a.d, a.vs, getattr(torch, a.dtype), torch.device(a.device), a.seed, a.reps, a.sub
    )
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
