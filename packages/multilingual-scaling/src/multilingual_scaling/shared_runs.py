"""Training runs that two experiments of one seed both need, trained once and read by both.

The normaliser diagnostic (``normaliser.run_normaliser``) repeats runs of the study (``experiment.run_seed``)
on the same seed: the four gamma-design mixtures at the larger small size, whose fits give p*, and the
held-out model at the entropy-normalised p* (README "Normaliser diagnostic"). Same code, same config, same
seed: the stored units agree bit for bit (``check/normaliser_*_max_abs_diff`` = 0 on every seed). The runner
gives a unit no access to another experiment's unit, so these runs go through a cache on disk instead: the
first unit to need a run trains it (``xentlab.data.build_once``: under a file lock, with one torch thread,
as the runner's units run) and writes its result as JSON; the other reads it back. JSON keeps a Python
float's every bit, so a unit gets exactly the numbers it would have computed itself.

The key (the key rule, ``xentlab.data.cache``): the world, the ratios, the training config, the seed,
whether the validation sample is scored, and the code that shapes the result: this module, ``train``
and ``families``, the decoder, the Markov source, the lr schedule, and the torch and numpy versions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from multilingual_scaling.families import make_world
from multilingual_scaling.train import TrainConfig, train_mixture
from xentlab.data.build_once import build_once
from xentlab.data.cache import cache_dir, code_key, source_digest
from xentlab.lm import code as lm_code

SOURCE_DIGEST = source_digest(__file__)
# every module whose code shapes a run's result (train_mixture and what it calls)
CODE_MODULES = (
    "multilingual_scaling.shared_runs",
    "multilingual_scaling.train",
    "multilingual_scaling.families",
    "xentlab.models.small_decoder",
    "xentlab.data.markov_source",
    "xentlab.train.schedules",
)
LIBRARIES = ("torch", "numpy")


def run_code() -> str:
    """The code part of a run's key (module docstring)."""
    return code_key(*(lm_code.module_digest(m) for m in CODE_MODULES), libraries=LIBRARIES)


def run_key(world_cfg: dict, ratios, tc: TrainConfig, seed: int, score_val: bool = False) -> str:
    """The cache key of one run: its inputs and ``run_code()``."""
    blob = json.dumps(
        {"world": world_cfg, "ratios": [float(x) for x in ratios], "config": asdict(tc), "seed": int(seed),
         "score_val": bool(score_val), "code": run_code()},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _valid(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()).get("losses"), list)
    except (OSError, ValueError, AttributeError):
        return False


def shared_run(world_cfg: dict, ratios, tc: TrainConfig, seed: int, *, score_val: bool = False) -> dict:
    """``train_mixture(make_world(world_cfg), ratios, tc, seed, score_val=score_val)``, trained by the first
    unit that asks for it and read back by every later one (module docstring)."""
    path = (
        cache_dir("multilingual-scaling", "runs")
        / f"run-{run_key(world_cfg, ratios, tc, seed, score_val)}.json"
    )

    def build(tmp: Path) -> None:
        res = train_mixture(make_world(world_cfg), ratios, tc, seed, score_val=score_val)
        tmp.write_text(json.dumps(res))

    build_once(path, build, valid=_valid)
    return json.loads(path.read_text())


__all__ = ["CODE_MODULES", "LIBRARIES", "run_code", "run_key", "shared_run"]
