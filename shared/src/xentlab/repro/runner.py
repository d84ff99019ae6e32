"""Running a package's experiments over seeds, with resume, then aggregating and judging claims."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import pickle
import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from xentlab.metrics.bootstrap import summarize
from xentlab.repro.context import RunContext
from xentlab.repro.environment import children_usage, unit_host, unit_peak_memory
from xentlab.repro.local_data import record_resolved, resolved_changed, take_resolved
from xentlab.repro.spec import Claim, Derived, Experiment, ReproError
from xentlab.repro.units import load_finished, save_unit, split_output, unit_key, unit_paths
from xentlab.repro.verdicts import evaluate_claim
from xentlab.train.seeding import seed_everything


@dataclass
class Results:
    """Everything measured: per-seed unit outputs and metrics aggregated over seeds."""

    scale: str
    seeds: list[int]  # the run's seed list (--seeds or the default); experiments without their own run these
    per_seed: dict[str, dict[int, dict]] = field(default_factory=dict)  # exp -> seed -> metrics+artifacts
    # exp -> the seeds it ran (Experiment.seeds at this scale, else ``seeds``); an experiment missing
    # here (a hand-built Results) ran ``seeds``
    exp_seeds: dict[str, list[int]] = field(default_factory=dict)
    metrics: dict[str, dict] = field(default_factory=dict)  # "exp/metric" -> summary incl. per_seed
    configs: dict[str, dict] = field(default_factory=dict)
    unit_wall_s: float = 0.0
    unit_cpu_s: float | None = None  # None when some unit predates CPU-time capture
    reused_units: int = 0
    computed_units: int = 0

    def seeds_of(self, exp: str) -> list[int]:
        """The seeds experiment ``exp`` ran."""
        return list(self.exp_seeds.get(exp, self.seeds))

    def metric_seeds(self, key: str) -> list[int]:
        """The seeds metric ``key`` has values for (its experiment's, or the shared ones of a derived metric)."""
        return [int(s) for s in self.metrics[key]["per_seed"]] if key in self.metrics else []

    def values(self, key: str) -> list:
        """The per-seed values of ``key``, in the order of ``metric_seeds(key)``."""
        return list(self.metrics[key]["per_seed"].values()) if key in self.metrics else []


@dataclass(frozen=True)
class UnitJob:
    exp: Experiment
    config: dict
    seed: int
    key: str
    unit_path: Path
    log_path: Path
    scale: str
    device: str
    threads: int
    show_progress: bool
    # the commit and dirty flag of the repository holding the package, captured once when the run
    # starts (``environment.code_git``); None outside a git checkout or when the caller gave none
    git: dict | None = None


def hash_seed_pinned() -> bool:
    """Whether this interpreter was started with ``PYTHONHASHSEED=0`` (string hashing not randomised).

    ``sys.flags.hash_randomization`` is 0 exactly then; the environment variable alone can lie (it
    may have been set after the interpreter started, which does not change ``hash``)."""
    return sys.flags.hash_randomization == 0


def needs_hash_child(job: UnitJob) -> bool:
    """Whether ``job`` must run in a child started with ``PYTHONHASHSEED=0`` (``Experiment.fixed_hash_seed``)."""
    return bool(getattr(job.exp, "fixed_hash_seed", False)) and not hash_seed_pinned()


@contextlib.contextmanager
def pinned_hash_env():
    """``PYTHONHASHSEED=0`` in ``os.environ`` (inherited by processes started meanwhile), then restored."""
    before = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONHASHSEED", None)
        else:
            os.environ["PYTHONHASHSEED"] = before


@dataclass(frozen=True)
class _FnRef:
    """A picklable stand-in for an experiment function whose module cannot be imported by name
    (``reproduce.py`` loaded from its path, as ``xentlab.repro.verify``'s child and tests do): the
    child loads the file under the same module name and takes the function from it."""

    module: str
    file: str
    qualname: str

    def resolve(self) -> Callable[..., Mapping[str, Any]]:
        module = sys.modules.get(self.module)
        if module is None:
            spec = importlib.util.spec_from_file_location(self.module, self.file)
            if spec is None or spec.loader is None:
                raise ReproError(f"cannot load {self.file} to run {self.qualname} with PYTHONHASHSEED=0")
            module = importlib.util.module_from_spec(spec)
            sys.modules[self.module] = module
            spec.loader.exec_module(module)
        fn: Any = module
        for part in self.qualname.split("."):
            fn = getattr(fn, part)
        return fn


def _picklable(job: UnitJob) -> UnitJob:
    """``job`` as the child receives it: itself when it pickles, else with its function as a ``_FnRef``."""
    try:
        pickle.dumps(job)
        return job
    except (pickle.PicklingError, AttributeError, TypeError):
        pass
    fn = job.exp.fn
    ref = _FnRef(fn.__module__, fn.__code__.co_filename, fn.__qualname__)
    return dataclasses.replace(job, exp=dataclasses.replace(job.exp, fn=ref))


def _run_unit_child(job: UnitJob) -> dict:
    """The child's entry point: started with ``PYTHONHASHSEED=0``, it runs the unit in-process."""
    if isinstance(job.exp.fn, _FnRef):
        job = dataclasses.replace(job, exp=dataclasses.replace(job.exp, fn=job.exp.fn.resolve()))
    if not hash_seed_pinned():  # would recurse: the environment did not reach the interpreter
        raise ReproError(f"{job.exp.name}: the child for PYTHONHASHSEED=0 started with hash randomisation on")
    return run_unit(job)


def _run_unit_hash_pinned(job: UnitJob) -> dict:
    """Run ``job`` in a fresh spawned process started with ``PYTHONHASHSEED=0`` and return its unit."""
    import multiprocessing as mp

    with pinned_hash_env(), ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_run_unit_child, _picklable(job)).result()


def run_unit(job: UnitJob) -> dict:
    """Run one (experiment, seed) unit from a clean seed and store it. Also the worker entry point.

    An experiment with ``fixed_hash_seed`` runs in a spawned child started with ``PYTHONHASHSEED=0``
    unless this process was started so (then in-process, as every other unit)."""
    if needs_hash_child(job):
        return _run_unit_hash_pinned(job)
    torch.set_num_threads(job.threads)
    job.unit_path.parent.mkdir(parents=True, exist_ok=True)
    job.log_path.write_text("")  # a restarted unit starts its step log afresh
    unit_dir = job.unit_path.parent / f"seed{job.seed}.work"
    unit_dir.mkdir(exist_ok=True)
    ctx = RunContext(
        scale=job.scale,
        seed=job.seed,
        device=torch.device(job.device),
        experiment=job.exp.name,
        unit_dir=unit_dir,
        log_path=job.log_path,
        show_progress=job.show_progress,
    )
    seed_everything(job.seed)
    kids0 = children_usage()
    t0, c0 = time.perf_counter(), _cpu_seconds()
    record_resolved()
    try:
        output = job.exp.fn(dict(job.config), job.seed, ctx)
    finally:
        local_inputs = take_resolved()
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    memory = unit_peak_memory(torch.device(job.device), ran_children=children_usage() != kids0)
    metrics, artifacts = split_output(output)
    if not any(unit_dir.iterdir()):
        unit_dir.rmdir()  # the scratch dir was not used: leave no empty folder behind
    return save_unit(
        job.unit_path,
        experiment=job.exp.name,
        seed=job.seed,
        key=job.key,
        config=job.config,
        metrics=metrics,
        artifacts=artifacts,
        wall_s=round(wall, 3),
        cpu_s=round(cpu, 3),
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        # where and how heavily it was computed (units.py's docstring); not part of the key
        **memory,
        git=job.git,
        host=unit_host(torch.device(job.device)),
        # only units that read local inputs carry the field (cpu-scale unit files stay as they were)
        **({"local_inputs": local_inputs} if local_inputs else {}),
    )


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children: unlike wall time, it is not inflated
    when the machine is shared with other work."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


def run_experiments(
    experiments: Sequence[Experiment],
    *,
    scale: str,
    seeds: Sequence[int],
    out_dir: Path,
    device: torch.device,
    workers: int = 1,
    threads: int = 1,
    fresh: bool = False,
    show_progress: bool = True,
    echo: Callable[[str], None] = print,
    git: dict | None = None,
) -> Results:
    """Run every (experiment, seed) unit that is not finished yet; ``git`` is what each newly computed
    unit records as the code it ran (``environment.code_git`` of the package, captured once)."""
    units_dir = out_dir / "units"
    results = Results(scale=scale, seeds=list(seeds))
    jobs: list[UnitJob] = []
    for exp in experiments:
        config = exp.config(scale)
        if config is None:
            continue
        results.configs[exp.name] = dict(config)
        results.per_seed[exp.name] = {}
        results.exp_seeds[exp.name] = exp.seeds_for(scale, seeds)
        for seed in results.exp_seeds[exp.name]:
            key = unit_key(exp, config, seed, scale=scale)
            unit_path, log_path = unit_paths(units_dir, exp.name, seed)
            done = None if fresh else load_finished(unit_path, key)
            moved = resolved_changed(config, done.get("local_inputs", {})) if done is not None else []
            if moved:
                echo(f"recomputing {exp.name} seed {seed}: its local inputs changed ({'; '.join(moved)})")
                done = None
            if done is not None:
                results.per_seed[exp.name][seed] = done
                results.reused_units += 1
                continue
            jobs.append(
                UnitJob(
                    exp,
                    dict(config),
                    seed,
                    key,
                    unit_path,
                    log_path,
                    scale,
                    str(device),
                    threads,
                    show_progress and workers == 1,
                    git,
                )
            )
    if results.reused_units:
        echo(f"resuming: {results.reused_units} finished unit(s) kept, {len(jobs)} to run")
    bar = tqdm(
        total=len(jobs), desc="units", disable=not (show_progress and os.isatty(2)), dynamic_ncols=True
    )
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        # every job wants PYTHONHASHSEED=0: start the workers with it, so that they run the units
        # in-process (otherwise a flagged job spawns its own child from its worker; run_unit)
        pin = all(needs_hash_child(job) for job in jobs)
        with (
            pinned_hash_env() if pin else contextlib.nullcontext(),
            ProcessPoolExecutor(
                max_workers=workers,
                mp_context=mp.get_context("spawn"),
                initializer=_worker_init,
                initargs=(threads,),
            ) as pool,
        ):
            futures = {pool.submit(run_unit, job): job for job in jobs}
            for fut in futures:
                job = futures[fut]
                results.per_seed[job.exp.name][job.seed] = fut.result()
                bar.update(1)
    else:
        for job in jobs:
            bar.set_postfix_str(f"{job.exp.name} seed {job.seed}")
            results.per_seed[job.exp.name][job.seed] = run_unit(job)
            bar.update(1)
    bar.close()
    results.computed_units = len(jobs)
    units = [u for per in results.per_seed.values() for u in per.values()]
    results.unit_wall_s = sum(u["wall_s"] for u in units)
    cpu = [u.get("cpu_s") for u in units]
    results.unit_cpu_s = sum(cpu) if cpu and all(c is not None for c in cpu) else None
    return results


class _NotAtSeed(KeyError):
    """An input of a derived metric that exists, but not at this seed (its experiment ran other seeds).

    A KeyError, so that a ``Derived`` function's own ``m.get(...)`` / ``in`` keep working."""


class _SeedView(Mapping):
    """What a ``Derived`` function sees for one seed: ``{"<experiment>/<metric>": value}``.

    A key of an experiment (or an earlier derived metric) that ran, but not at this seed, raises
    ``_NotAtSeed`` and marks the seed as not shared, even if the function catches the KeyError."""

    def __init__(self, flat: Mapping[str, Any], seed: int, present: Mapping[str, set[int]]):
        self._flat, self._seed, self._present = flat, seed, present
        self.not_here: set[str] = set()  # inputs read that did not run at this seed
        self.read: set[str] = set()  # experiments / derived metrics read

    def _source(self, key: str) -> str | None:
        if key in self._present:  # an earlier derived metric
            return key
        exp = key.split("/", 1)[0]
        return exp if "/" in key and exp in self._present else None

    def __getitem__(self, key: str) -> Any:
        source = self._source(key)
        if source is not None:
            self.read.add(source)
            if self._seed not in self._present[source]:
                self.not_here.add(source)
                raise _NotAtSeed(key)
        return self._flat[key]

    def __iter__(self):
        return iter(self._flat)

    def __len__(self) -> int:
        return len(self._flat)


def _union(seed_lists: Sequence[Sequence[int]]) -> list[int]:
    seen: dict[int, None] = {}
    for seeds in seed_lists:
        seen.update(dict.fromkeys(seeds))
    return list(seen)


def _no_shared_seed(d: Derived, read: set[str], present: Mapping[str, set[int]]) -> ReproError:
    inputs = ", ".join(f"{name} at seeds {sorted(present[name])}" for name in sorted(read))
    return ReproError(
        f"derived metric {d.name!r} reads inputs that share no seed ({inputs}); give those experiments "
        "a common seed (Experiment.seeds) or do not pair them"
    )


def _derive(
    derived: Sequence[Derived],
    flat: dict[int, dict[str, Any]],
    present: dict[str, set[int]],
    order: Sequence[int],
    errors: tuple[type[BaseException], ...],
) -> dict[str, list[int]]:
    """Compute each derived metric into ``flat[seed]`` at the seeds its inputs share; returns its seeds.

    ``present`` maps each experiment (and, as they are computed, each derived metric) to the seeds it
    has. An exception in ``errors`` gives the value None at that seed (an input missing at this scale,
    or an undefined value); a derived metric whose inputs share no seed raises ReproError."""
    out: dict[str, list[int]] = {}
    # one seed list for all: every seed is shared, and the functions get the plain dict, as always
    uniform = all(seeds == set(order) for seeds in present.values())
    for d in derived:
        seeds, read = [], set()
        for seed in order:
            view = flat[seed] if uniform else _SeedView(flat[seed], seed, present)
            try:
                value = float(d.fn(view))
            except _NotAtSeed:
                value = None
            except errors:
                value = None
            if not uniform:
                read |= view.read
                if view.not_here:
                    continue  # an input did not run at this seed: not a shared seed
            flat[seed][d.name] = value
            seeds.append(seed)
        if not seeds:
            raise _no_shared_seed(d, read, present)
        out[d.name] = seeds
        present[d.name] = set(seeds)
    return out


def check_derived_seeds(
    experiments: Sequence[Experiment], derived: Sequence[Derived], *, scale: str, seeds: Sequence[int]
) -> None:
    """Before any unit runs: a ReproError for a derived metric whose experiments share no seed.

    Each derived function is called once per seed on a stand-in for that seed's metrics in which
    every metric of an experiment that runs at that seed reads 1.0 (the values are not known yet,
    only which experiments ran where); any error other than a missing input is ignored here."""
    exp_seeds = {e.name: e.seeds_for(scale, seeds) for e in experiments if e.config(scale) is not None}
    if all(s == list(seeds) for s in exp_seeds.values()):
        return  # one seed list for all: every seed is shared
    present = {name: set(s) for name, s in exp_seeds.items()}
    order = _union([seeds, *exp_seeds.values()])
    flat = {s: _Standin(present, s) for s in order}
    _derive(derived, flat, present, order, (Exception,))


class _Standin(dict):
    """A seed's metrics before they exist: 1.0 for any metric of an experiment present at that seed."""

    def __init__(self, present: Mapping[str, set[int]], seed: int):
        super().__init__()
        self._present, self._seed = present, seed

    def __missing__(self, key: str) -> float:
        exp = key.split("/", 1)[0]
        if exp in self._present and self._seed in self._present[exp]:
            return 1.0
        raise KeyError(key)


def aggregate(results: Results, derived: Sequence[Derived] = ()) -> None:
    """Fill ``results.metrics``: per seed, then mean/std/n/CI over seeds; derived metrics are paired.

    A metric of an experiment has the seeds that experiment ran; a derived metric has the seeds
    shared by everything it reads (with a single seed list, every metric has the run's seeds)."""
    exp_seeds = {exp: results.seeds_of(exp) for exp in results.per_seed}
    order = _union([results.seeds, *exp_seeds.values()])
    per_seed_flat: dict[int, dict[str, Any]] = {s: {} for s in order}
    key_seeds: dict[str, list[int]] = {}
    for exp, by_seed in results.per_seed.items():
        names = {name: None for unit in by_seed.values() for name in unit["metrics"]}
        for name in names:
            key_seeds[f"{exp}/{name}"] = exp_seeds[exp]
        for seed, unit in by_seed.items():
            for name, value in unit["metrics"].items():
                per_seed_flat[seed][f"{exp}/{name}"] = value
    present = {exp: set(seeds) for exp, seeds in exp_seeds.items()}
    key_seeds |= _derive(derived, per_seed_flat, present, order, (KeyError, ZeroDivisionError, TypeError))
    for key in sorted(key_seeds):
        per = {str(s): per_seed_flat[s].get(key) for s in key_seeds[key]}
        vals = [float(v) for v in per.values() if v is not None]
        summary = summarize(vals) if vals else {"mean": None, "std": None, "n": 0, "ci95": None}
        if vals and any(v != v for v in vals):
            summary = {"mean": None, "std": None, "n": len(vals), "ci95": None}
        results.metrics[key] = {**summary, "per_seed": per}


def judge(claims: Sequence[Claim], results: Results) -> list[dict]:
    """The claims' records; each names the seeds its metric was measured on (``"seeds"``)."""
    return [
        {**evaluate_claim(c, results.values(c.metric) or [None]), "seeds": results.metric_seeds(c.metric)}
        for c in claims
    ]


def merge_step_logs(out_dir: Path, results: Results) -> Path:
    """Concatenate the units' step logs, in (experiment, seed) order, into metrics.jsonl."""
    from xentlab.data.cache import atomic_write_text

    lines: list[str] = []
    for exp, by_seed in results.per_seed.items():
        for seed in sorted(by_seed):
            _, log_path = unit_paths(out_dir / "units", exp, seed)
            if log_path.exists():
                lines.extend(line for line in log_path.read_text().splitlines() if line.strip())
    return atomic_write_text(out_dir / "metrics.jsonl", "\n".join(lines) + ("\n" if lines else ""))


def load_result(path: Path) -> Mapping[str, Any]:
    return json.loads(Path(path).read_text())
