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
    budgets = {k: int(v) for k, v in re.findall(r'(FULL_S|TESTS_S|KILL_S)="\$\{CCE_\w+:-(\d+)\}"', text)}
    assert set(budgets) == {"FULL_S", "TESTS_S", "KILL_S"}
    # the tests may run KILL_S past TESTS_S (SIGINT, then SIGKILL); leave 45 s for the wheel
    # install, the environment report (imports torch, transformers, Liger) and the tarball
    assert sum(budgets.values()) <= COMMAND_LIMIT_S - 45, budgets


def test_tests_are_interrupted_not_terminated_and_table_1_is_packed_first():
    # At its limit pytest must get SIGINT: it then prints the failures so far and writes the JUnit
    # file; SIGTERM kills it with neither, and `-q` alone shows only dots. The run directory is
    # packed before the tests start, so a command cut at the device's limit still returns Table 1.
    text = _script("run_gpu_tier.sh")
    (call,) = [ln for ln in text.splitlines() if "-m pytest" in ln]
    assert re.search(r'timeout -s INT -k "\$KILL_S" "\$TESTS_S"', call), call
    assert text.index("tar czf") < text.index("-m pytest")


def test_wheels_named_by_the_fetch_script_are_locked():
    # fetch_wheels.sh reads the versions from uv.lock; both packages must be there
    lock = (REPO / "uv.lock").read_text()
    for name in ("cut-cross-entropy", "liger-kernel"):
        assert f'name = "{name}"' in lock
