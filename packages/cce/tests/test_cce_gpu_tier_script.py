"""The one-call GPU tier script (packages/cce/gpu/run_gpu_tier.sh): it must parse, name files that
exist, and fit its two phases inside the lent machine's 10-minute command limit."""

import re
import subprocess
from pathlib import Path

GPU_DIR = Path(__file__).resolve().parents[1] / "gpu"
REPO = GPU_DIR.parents[2]
COMMAND_LIMIT_S = 600  # the device tool's longest command


def _script(name: str) -> str:
    return (GPU_DIR / name).read_text()


def test_scripts_parse():
    for name in ("run_gpu_tier.sh", "fetch_wheels.sh"):
        subprocess.run(["bash", "-n", str(GPU_DIR / name)], check=True)


def test_named_paths_exist():
    text = _script("run_gpu_tier.sh")
    for rel in re.findall(r"((?:shared|packages)/[\w./-]+\.py)", text):
        assert (REPO / rel).is_file(), rel


def test_default_budgets_fit_the_command_limit():
    text = _script("run_gpu_tier.sh")
    budgets = {k: int(v) for k, v in re.findall(r'(FULL_S|TESTS_S)="\$\{CCE_\w+:-(\d+)\}"', text)}
    assert set(budgets) == {"FULL_S", "TESTS_S"}
    # leave a minute for the wheel install, the environment report and the tarball
    assert sum(budgets.values()) <= COMMAND_LIMIT_S - 30, budgets


def test_wheels_named_by_the_fetch_script_are_locked():
    # fetch_wheels.sh reads the versions from uv.lock; both packages must be there
    lock = (REPO / "uv.lock").read_text()
    for name in ("cut-cross-entropy", "liger-kernel"):
        assert f'name = "{name}"' in lock
