#!/usr/bin/env bash
# The GPU tier of the cce reproduction in ONE call of a lent GPU machine (a session gets 15 minutes
# of device time in all, a command at most 10): the paper's Table 1 at --scale full, then the
# Triton kernel tests compiled for the GPU, gpu-marked ones included (the official bf16/fp16 grid and fw+bw vs torch.compile).
#
# Here first:   bash packages/cce/gpu/fetch_wheels.sh          (once; .whl/ is git-ignored)
# Device call:  run(command="bash packages/cce/gpu/run_gpu_tier.sh", carry=[".whl"], timeout_s=600)
# Rehearsal on a CPU (checks the plumbing, not the GPU):
#   PYTHON=.venv/bin/python CCE_SCALE=smoke CCE_DEVICE=cpu bash packages/cce/gpu/run_gpu_tier.sh
#
# The GPU machine has no uv and no network: its own python3 (with torch, triton, transformers) runs
# the code straight from the source tree via PYTHONPATH. Everything lands in $OUT (the device
# tool brings back at most 8 files), so the run directory is packed into one tarball.
set -uo pipefail
cd "$(dirname "$0")/../../.."
PY="${PYTHON:-python3}"
OUT="${OUT:-$PWD/.gpu-tier-out}"
SCALE="${CCE_SCALE:-full}"
DEVICE="${CCE_DEVICE:-cuda}"
# Budgets inside the 10-minute command limit: Table 1 first (it is the claim), tests after. The
# tests get SIGINT at their limit and KILL_S more seconds to write their summary and JUnit file.
FULL_S="${CCE_FULL_S:-380}"
TESTS_S="${CCE_TESTS_S:-150}"
KILL_S="${CCE_KILL_S:-15}"
RUN_DIR="$(mktemp -d)/cce-$SCALE"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if compgen -G ".whl/*.whl" >/dev/null; then
    # pure-Python wheels: any pip can unpack them (the device's python3 is the torch one)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/cce-site .whl/*.whl || { echo "wheel install failed" >&2; exit 1; }
    export PYTHONPATH="/tmp/cce-site"
fi
export PYTHONPATH="$PWD/shared/src:$PWD/packages/cce/src${PYTHONPATH:+:$PYTHONPATH}"

{
    nvidia-smi 2>&1 || echo "no nvidia-smi"
    "$PY" - <<'PY'
import importlib
for name in ("torch", "triton", "transformers", "cut_cross_entropy", "liger_kernel", "xentlab", "cce"):
    try:
        m = importlib.import_module(name)
        print(f"{name} {getattr(m, '__version__', '?')} from {getattr(m, '__file__', '?')}")
    except Exception as e:  # report, do not stop: a missing baseline is recorded as unavailable
        print(f"{name} MISSING: {e!r}")
import torch
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")
PY
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

echo "== reproduce.py --scale $SCALE --device $DEVICE (limit ${FULL_S}s)"
timeout "$FULL_S" "$PY" packages/cce/reproduce.py --scale "$SCALE" --device "$DEVICE" \
    --out "$RUN_DIR" --quiet 2>&1 | tee "$OUT/reproduce.log"
reproduce_rc=${PIPESTATUS[0]}

# Pack the run directory now, before the tests: if the command is cut at its limit, Table 1 is
# already in $OUT. A run stopped by FULL_S leaves its unit log (every measured method) in there.
tar czf "$OUT/reproduce_$SCALE.tar.gz" -C "$(dirname "$RUN_DIR")" "$(basename "$RUN_DIR")"

# The whole file: on CUDA its interpreter tests run the compiled kernels too (fp32, fp16, bf16),
# then the official bf16/fp16 grid (576 cases, a few hundred kernel specialisations to compile).
# Compiling is single-threaded per process, so with pytest-xdist (in the GPU image) eight workers
# compile side by side on the machine's 16 cores. At the limit pytest gets SIGINT, not SIGTERM:
# it then still prints the failures so far and writes the JUnit file (SIGTERM would lose both).
XDIST=()
if "$PY" -c "import xdist" 2>/dev/null; then XDIST=(-n "${CCE_TEST_WORKERS:-8}"); fi
echo "== pytest shared/tests/test_kernels_triton.py ${XDIST[*]} (limit ${TESTS_S}s)"
timeout -s INT -k "$KILL_S" "$TESTS_S" "$PY" -m pytest -q -rfE --durations=15 "${XDIST[@]}" \
    --junitxml="$OUT/gpu_tests.xml" shared/tests/test_kernels_triton.py 2>&1 | tee "$OUT/gpu_tests.log"
tests_rc=${PIPESTATUS[0]}

echo "reproduce rc=$reproduce_rc  tests rc=$tests_rc  (124 = hit its time limit)"
[ "$reproduce_rc" -eq 0 ] && [ "$tests_rc" -eq 0 ]
