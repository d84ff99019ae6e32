"""The labelled data set: generated set cover instances, SCIP solution pools and the plain-SCIP baseline.

Built once per generator/labelling config and cached under xentlab.data.cache_dir("coco_milp"), keyed
by a hash of that config and of the code that builds it (``code_version()``: the sources of this module,
``instances`` and ``solve``, and the numpy / PySCIPOpt / SCIP versions; xentlab.data.cache, "The key
rule"); ``xentlab.data.build_once`` builds it: parallel units wait on a file lock while the first one
builds it, and the file is renamed into place only when complete. Instances
are generated in one stream from `data_seed` and split train / val / test by position, so the test
instances are never seen in training (their labels serve only as the best-known reference).
"""

from __future__ import annotations

import functools
import hashlib
import json
import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from coco_milp import instances as _instances
from coco_milp import solve as _solve
from coco_milp.instances import SetCover, generate_set_cover
from coco_milp.solve import label_instance, solve_plain
from xentlab.data.build_once import build_once
from xentlab.data.cache import cache_dir, code_key, source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache key (xentlab.data.cache, "The key rule")"""


def scip_version() -> str:
    """The SCIP library PySCIPOpt runs (its wheel bundles SCIP, so this usually follows the PySCIPOpt
    version, but a source build can link another SCIP): the labels and plain-SCIP objectives are its output."""
    from pyscipopt import Model

    model = Model()
    return f"{model.getMajorVersion()}.{model.getMinorVersion()}.{model.getTechVersion()}"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The code part of ``DataConfig.key``: the generator (``instances``), the labelling and plain solves
    (``solve``), this module (the split order), numpy's RNG, and the PySCIPOpt and SCIP versions."""
    return code_key(
        SOURCE_DIGEST,
        _instances.SOURCE_DIGEST,
        _solve.SOURCE_DIGEST,
        f"scip-{scip_version()}",
        libraries=("numpy", "pyscipopt"),
    )


@dataclass(frozen=True)
class DataConfig:
    n_rows: int = 150  # set cover rows (constraints)
    n_cols: int = 300  # columns (binary variables)
    density: float = 0.05  # Ecole's default density
    n_train: int = 60
    n_val: int = 10
    n_test: int = 20
    data_seed: int = 0  # instances are the same for every training seed
    label_time_limit: float = 2.0  # seconds of SCIP per instance for the labelling solve (wall clock)
    # a node limit for the labelling solve (deterministic, unlike the wall-clock limit on a shared machine);
    # None = no node limit (the first protocol)
    label_node_limit: int | None = None
    max_sols: int = 50  # pool size kept (process_data.py: max_solutions=50)
    # the budget of the plain-SCIP solve stored with the test labels (default SCIP); the first protocol's
    # budget for plain SCIP and PaS. The second protocol sets RunConfig.budget_* instead.
    pas_node_limit: int = 1

    def key(self) -> str:
        """The cache file name: the config and the code that builds the data (``code_version()``)."""
        d = {**asdict(self), "code": code_version()}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Labelled:
    inst: SetCover
    sols: np.ndarray  # (Q, n) pool, best first
    objs: np.ndarray  # (Q,)
    best_obj: float  # best known objective (the labelling solve)
    plain_obj: float  # plain SCIP under the tight budget


def _label(args):
    inst, cfg = args
    return label_instance(inst, cfg.label_time_limit, cfg.max_sols, cfg.label_node_limit)


def _build(cfg: DataConfig, workers: int = 1) -> dict[str, list[Labelled]]:
    rng = np.random.default_rng(cfg.data_seed)
    sizes = (("train", cfg.n_train), ("val", cfg.n_val), ("test", cfg.n_test))
    # one generator stream in split order (the instances do not depend on the labelling)
    insts = [(split, generate_set_cover(cfg.n_rows, cfg.n_cols, cfg.density, rng)) for split, n in sizes
             for _ in range(n)]  # fmt: skip
    jobs = [(inst, cfg) for _, inst in insts]
    if workers > 1:  # the labelling solves are independent (and deterministic with a node limit)
        with ProcessPoolExecutor(workers) as ex:
            labs = list(ex.map(_label, jobs))
    else:
        labs = [_label(j) for j in jobs]
    out: dict[str, list[Labelled]] = {"train": [], "val": [], "test": []}
    for (split, inst), lab in zip(insts, labs):
        plain = solve_plain(inst, cfg.pas_node_limit) if split == "test" else None
        out[split].append(Labelled(inst, lab.sols, lab.objs, lab.obj, plain.obj if plain else float("nan")))
    return out


def load_dataset(cfg: DataConfig, use_cache: bool = True, workers: int = 1) -> dict[str, list[Labelled]]:
    """The labelled splits; `workers` > 1 labels the instances in parallel processes when building."""
    if not use_cache:
        return _build(cfg, workers)
    # threads=None: the build runs SCIP and numpy only (no torch reductions to pin)
    path = build_once(cache_dir("coco_milp") / f"setcover-{cfg.key()}.pkl",
                      lambda tmp: tmp.write_bytes(pickle.dumps(_build(cfg, workers))), threads=None)  # fmt: skip
    return pickle.loads(path.read_bytes())
