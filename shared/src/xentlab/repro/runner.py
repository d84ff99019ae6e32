"""Running a package's experiments over seeds, with resume, then aggregating and judging claims."""

from __future__ import annotations

import json
import os
import resource
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
from xentlab.repro.local_data import record_resolved, resolved_changed, take_resolved
from xentlab.repro.spec import Claim, Derived, Experiment
from xentlab.repro.units import load_finished, save_unit, split_output, unit_key, unit_paths
from xentlab.repro.verdicts import evaluate_claim
from xentlab.train.seeding import seed_everything


@dataclass
class Results:
    """Everything measured: per-seed unit outputs and metrics aggregated over seeds."""

    scale: str
    seeds: list[int]
    per_seed: dict[str, dict[int, dict]] = field(default_factory=dict)  # exp -> seed -> metrics+artifacts
    metrics: dict[str, dict] = field(default_factory=dict)  # "exp/metric" -> summary incl. per_seed
    configs: dict[str, dict] = field(default_factory=dict)
    unit_wall_s: float = 0.0
    unit_cpu_s: float | None = None  # None when some unit predates CPU-time capture
    reused_units: int = 0
    computed_units: int = 0

    def values(self, key: str) -> list:
        return [self.metrics[key]["per_seed"].get(str(s)) for s in self.seeds] if key in self.metrics else []


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


def run_unit(job: UnitJob) -> dict:
    """Run one (experiment, seed) unit from a clean seed and store it. Also the worker entry point."""
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
    t0, c0 = time.perf_counter(), _cpu_seconds()
    record_resolved()
    try:
        output = job.exp.fn(dict(job.config), job.seed, ctx)
    finally:
        local_inputs = take_resolved()
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
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
) -> Results:
    units_dir = out_dir / "units"
    results = Results(scale=scale, seeds=list(seeds))
    jobs: list[UnitJob] = []
    for exp in experiments:
        config = exp.config(scale)
        if config is None:
            continue
        results.configs[exp.name] = dict(config)
        results.per_seed[exp.name] = {}
        for seed in seeds:
            key = unit_key(exp, config, seed)
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
                )
            )
    if results.reused_units:
        echo(f"resuming: {results.reused_units} finished unit(s) kept, {len(jobs)} to run")
    bar = tqdm(
        total=len(jobs), desc="units", disable=not (show_progress and os.isatty(2)), dynamic_ncols=True
    )
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=_worker_init,
            initargs=(threads,),
        ) as pool:
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


def aggregate(results: Results, derived: Sequence[Derived] = ()) -> None:
    """Fill ``results.metrics``: per seed, then mean/std/n/CI over seeds; derived metrics are paired."""
    per_seed_flat: dict[int, dict[str, Any]] = {s: {} for s in results.seeds}
    for exp, by_seed in results.per_seed.items():
        for seed, unit in by_seed.items():
            for name, value in unit["metrics"].items():
                per_seed_flat[seed][f"{exp}/{name}"] = value
    for d in derived:
        for flat in per_seed_flat.values():
            try:
                flat[d.name] = float(d.fn(flat))
            except (KeyError, ZeroDivisionError, TypeError):
                flat[d.name] = None  # an input missing at this scale, or undefined
    keys = sorted({k for flat in per_seed_flat.values() for k in flat})
    for key in keys:
        per = {str(s): per_seed_flat[s].get(key) for s in results.seeds}
        vals = [float(v) for v in per.values() if v is not None]
        summary = summarize(vals) if vals else {"mean": None, "std": None, "n": 0, "ci95": None}
        if vals and any(v != v for v in vals):
            summary = {"mean": None, "std": None, "n": len(vals), "ci95": None}
        results.metrics[key] = {**summary, "per_seed": per}


def judge(claims: Sequence[Claim], results: Results) -> list[dict]:
    return [evaluate_claim(c, results.values(c.metric) or [None]) for c in claims]


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
