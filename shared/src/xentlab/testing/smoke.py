"""Run a package's reproduce.py at smoke scale in this process and validate what it wrote."""

from __future__ import annotations

import json
import math
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

REQUIRED_KEYS = (
    "paper",
    "package",
    "scale",
    "seeds",
    "config",
    "metrics",
    "claims",
    "wall_time_s",
    "peak_memory_mb",
    "environment",
)


def validate_result(result: dict) -> None:
    """The result.json schema of DESIGN.md, and every metric finite for every seed."""
    missing = [k for k in REQUIRED_KEYS if k not in result]
    if missing:
        raise AssertionError(f"result.json lacks {missing}")
    for key in ("python", "torch", "device", "git"):
        if key not in result["environment"]:
            raise AssertionError(f"result.json environment lacks {key!r}")
    bad = [
        f"{k}[seed {s}]={v}"
        for k, m in result["metrics"].items()
        for s, v in m["per_seed"].items()
        if v is None or (isinstance(v, float) and not math.isfinite(v))
    ]
    if bad:
        raise AssertionError(f"non-finite or missing metrics: {bad[:10]}")
    _validate_seeds(result)
    for c in result["claims"]:
        if c["verdict"] not in ("holds", "fails", "inconclusive"):
            raise AssertionError(f"claim {c['id']} has verdict {c['verdict']!r}")
        if c.get("reason") == "metric not measured at this scale":
            raise AssertionError(f"claim {c['id']}: metric {c['metric']!r} was not produced")


def _is_seed_list(seeds) -> bool:
    return (
        isinstance(seeds, list)
        and bool(seeds)
        and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in seeds)
        and len(set(seeds)) == len(seeds)
    )


def _validate_seeds(result: dict) -> None:
    """The run's "seeds" (both schemas) and, from schema 2 on, "experiment_seeds": the seeds each
    experiment ran. A metric of an experiment has exactly that experiment's seeds; every per-seed key
    is one of the seeds that ran; a claim's "seeds" are its metric's. Older results (no
    "experiment_seeds") had one seed list for every metric, which is all that is checked there."""
    if not _is_seed_list(result["seeds"]):
        raise AssertionError(f"result.json seeds {result['seeds']!r} are not distinct non-negative integers")
    exp_seeds = result.get("experiment_seeds")
    if exp_seeds is None:
        return
    if not isinstance(exp_seeds, dict) or set(exp_seeds) != set(result["config"]):
        raise AssertionError("result.json experiment_seeds must name the seeds of every experiment in config")
    bad = [exp for exp, seeds in exp_seeds.items() if not _is_seed_list(seeds)]
    if bad:
        raise AssertionError(f"experiment_seeds of {bad} are not distinct non-negative integers")
    ran = {str(s) for seeds in [result["seeds"], *exp_seeds.values()] for s in seeds}
    for key, m in result["metrics"].items():
        exp = key.split("/", 1)[0]
        if "/" in key and exp in exp_seeds and list(m["per_seed"]) != [str(s) for s in exp_seeds[exp]]:
            raise AssertionError(
                f"metric {key!r} has seeds {list(m['per_seed'])}, its experiment ran {exp_seeds[exp]}"
            )
        if not set(m["per_seed"]) <= ran:
            raise AssertionError(
                f"metric {key!r} has seeds {sorted(set(m['per_seed']) - ran)} that no experiment ran"
            )
    for c in result["claims"]:
        m = result["metrics"].get(c["metric"])
        if "seeds" in c and m is not None and [str(s) for s in c["seeds"]] != list(m["per_seed"]):
            raise AssertionError(
                f"claim {c['id']}: seeds {c['seeds']} are not its metric's {list(m['per_seed'])}"
            )


def run_smoke(reproduce_py: str | Path, out_dir: str | Path, extra_args: Sequence[str] = ()) -> dict:
    """``reproduce.py --scale smoke --out out_dir --quiet`` in-process; returns the validated result.json.

    In-process because each new Python process pays ~10 s for ``import torch`` on our CI machine.
    """
    reproduce_py = Path(reproduce_py).resolve()
    argv = [str(reproduce_py), "--scale", "smoke", "--out", str(out_dir), "--quiet", *extra_args]
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = argv
    sys.path.insert(0, str(reproduce_py.parent))
    try:
        runpy.run_path(str(reproduce_py), run_name="__main__")
    except SystemExit as e:
        if e.code not in (0, None):
            raise AssertionError(f"{reproduce_py.name} --scale smoke exited with {e.code}") from None
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    result = json.loads((Path(out_dir) / "result.json").read_text())
    validate_result(result)
    return result
