"""Settings for every test in the workspace: offline, one thread, a private cache, no network.

Lives at the repository root so that it applies to the workspace tests, the core's tests and
every package's tests in the single pytest process CI runs.
"""

from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402  (after the thread settings above)

if not torch.cuda.is_available():
    # Triton kernels run on CPU tensors through the interpreter; must be set before triton is imported.
    os.environ.setdefault("TRITON_INTERPRET", "1")
torch.set_num_threads(1)


def _excluded_members() -> list[str]:
    import tomllib
    from pathlib import Path

    meta = tomllib.loads((Path(__file__).parent / "pyproject.toml").read_text())
    return list(meta.get("tool", {}).get("uv", {}).get("workspace", {}).get("exclude", []))


# packages excluded from the workspace (unfinished) are not installed, so their tests are not collected
collect_ignore_glob = [f"{m.rstrip('/')}/*" for m in _excluded_members()]


class NetworkAccessError(RuntimeError):
    """A test tried to reach the network."""


_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}
_real_connect = socket.socket.connect
_real_getaddrinfo = socket.getaddrinfo


def _host_of(address) -> str | None:
    if isinstance(address, tuple) and address:
        return str(address[0])
    return None  # AF_UNIX paths and the like are local


def _guarded_connect(self, address):
    host = _host_of(address)
    if host is not None and host not in _LOCAL_HOSTS:
        raise NetworkAccessError(f"test tried to connect to {address!r}; tests must stay offline")
    return _real_connect(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host is not None and str(host) not in _LOCAL_HOSTS:
        raise NetworkAccessError(f"test tried to resolve {host!r}; tests must stay offline")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    socket.socket.connect = _guarded_connect
    socket.getaddrinfo = _guarded_getaddrinfo
    yield
    socket.socket.connect = _real_connect
    socket.getaddrinfo = _real_getaddrinfo


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Generated data goes to a per-session cache unless the caller chose one (CI may keep it warm)."""
    if "XENTLAB_CACHE" not in os.environ:
        os.environ["XENTLAB_CACHE"] = str(tmp_path_factory.mktemp("xentlab-cache"))
    yield


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords or "bench" in item.keywords:
            item.add_marker(skip_gpu)
