#!/usr/bin/env bash
# Downloads, on the development machine, the two wheels the GPU machine lacks: the official
# cut-cross-entropy package and Liger-Kernel (both pure Python + Triton, no dependencies beyond
# torch and triton, which the GPU machine's image has). The GPU machine cannot reach PyPI, so they
# travel with the working tree: name `.whl` in the device call's `carry` (see run_gpu_tier.sh).
# Versions are the ones in uv.lock, so the GPU run measures what the CPU tests exercised.
set -euo pipefail
cd "$(dirname "$0")/../../.."
versions=$(python3 - <<'PY'
import tomllib
lock = tomllib.load(open("uv.lock", "rb"))
want = {"cut-cross-entropy", "liger-kernel"}
print(" ".join(f"{p['name']}=={p['version']}" for p in lock["package"] if p["name"] in want))
PY
)
mkdir -p .whl
# shellcheck disable=SC2086  # one argument per requirement
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    -d .whl $versions
ls -l .whl
