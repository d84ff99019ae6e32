"""Capture of what produced a result: versions, device, git commit, peak memory."""

from __future__ import annotations

import functools
import platform
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

from xentlab.repro.spec import ReproError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ReproError(
            "--device cuda was asked for, but torch sees no CUDA device (use --device cpu or auto)"
        )
    if name not in ("cpu", "cuda"):
        raise ReproError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_state(path: Path) -> dict:
    """Commit and dirtiness of the repository holding ``path`` (None outside a git checkout).

    Dirty means a tracked file differs from the commit; untracked files (results not yet
    committed) do not count."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(dirty) if dirty is not None else None}


def capture_environment(package: str, device: torch.device, repo_path: Path) -> dict:
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "numpy": _version("numpy"),
        "xentlab": _version("xentlab"),
        "package": {"name": package, "version": _version(package)},
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "argv": sys.argv,
    }
    env["git"] = git_state(repo_path)
    return env


@functools.cache
def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name: the first "model name" line of ``cpuinfo`` (Linux), else
    ``platform.processor()``, else "cpu"."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def unit_host(device: torch.device) -> dict:
    """Where a unit ran, for numbers that depend on the hardware and not only on the code: bf16 (and
    some fp32) CPU kernels dispatch on the instruction set, so the same code and seed can give other
    low-order bits on another CPU, which training can amplify (packages/cce's bf16 LM, found by
    ``xentlab verify``). ``cpu`` (model name), ``cpu_capability`` (the ISA torch's CPU kernels dispatch
    on: ``torch.backends.cpu.get_cpu_capability()``), ``torch``, and ``cuda`` (device name) for CUDA units."""
    host = {
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
    }
    if device.type == "cuda":
        host["cuda"] = torch.cuda.get_device_name(device)
    return host


def peak_memory_mb(device: torch.device) -> dict:
    """Peak resident memory of this process and its children (MB), and peak CUDA allocation."""
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = {"rss_mb": round(self_kb / 1024, 1), "children_rss_mb": round(child_kb / 1024, 1)}
    if device.type == "cuda":
        out["cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def code_git(package_dir: Path) -> dict | None:
    """``git_state`` of the repository holding a package, or None outside a git checkout: what each
    unit of a run records as the code it was computed with (captured once, when the run starts)."""
    state = git_state(package_dir)
    return state if state["commit"] is not None else None


def children_usage() -> tuple:
    """The resource usage of this process's finished children; it changes only when a child process
    is waited for, so comparing it before and after a unit tells whether the unit ran one."""
    return tuple(resource.getrusage(resource.RUSAGE_CHILDREN))


def unit_peak_memory(device: torch.device, *, ran_children: bool) -> dict:
    """A finished unit's memory record (``peak_memory_mb`` of the computing process, read when the
    unit ends), each an UPPER BOUND for the unit, since the process may have run imports or other
    units first: ``peak_rss_mb`` (this process), ``peak_children_rss_mb`` (the largest child process
    it ever waited for; only when the unit ran one, ``ran_children``), ``peak_cuda_mb`` (the peak
    CUDA allocation of the process; CUDA units only)."""
    peak = peak_memory_mb(device)
    out = {"peak_rss_mb": peak["rss_mb"]}
    if ran_children:
        out["peak_children_rss_mb"] = peak["children_rss_mb"]
    if "cuda_mb" in peak:
        out["peak_cuda_mb"] = peak["cuda_mb"]
    return out
