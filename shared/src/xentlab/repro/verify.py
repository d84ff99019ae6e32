"""Recompute committed cpu-scale units and compare them with what is stored: a reproducibility audit.

A unit's resume key is (experiment, version, config, seed) (``units.unit_key``): it does not see the
code. When a package's (or a core module's) code changes without a version bump, the committed
units stop being what today's code computes, and the resume cache keeps them. ``verify`` notices:
it picks committed units (by default the cheapest of each experiment), recomputes each one in a
fresh Python process (torch threads = 1, into a temporary directory, through the runner's own
``run_unit``, so exactly as ``reproduce.py`` would compute it) and compares every stored metric
with the recomputed one.

Tolerances: ints, bools and strings must be equal. Floats must agree within ``rtol`` 1e-6 /
``atol`` 1e-9 by default: same code, same seed, one thread on the same machine is bit-for-bit
deterministic for everything we run, so any difference is a finding; the small slack only absorbs
a different float summation order (another CPU's BLAS kernels) and is far below the resolution of
any claim. A stored None (a NaN/inf that the unit file could not hold) equals only None.

Timings are not compared: a metric whose name says it measures time (``cpu_s_*``, ``*_time_s``,
``train_s``, ``*_ms_*``, ``sps``, ``s_per_step_*``, ``*_time_over_*``: ``TIMING_METRICS``) measures
the machine and its load, not the code; such metrics are listed as not compared. ``ignore`` replaces
that pattern (``None``: compare everything).

The parent process never runs experiment code; each unit runs in a child started as
``python -m xentlab.repro.verify --unit <reproduce.py> <experiment> <seed> <out_dir>``.

Each child imports the code as it is on disk when it starts, so an edit made while verify runs
(e.g. to the package under audit) would make later units recompute with other code than earlier
ones. The parent fingerprints the code the children run (every ``.py`` file of the package outside
``results/`` and ``tests/``, and of the installed ``xentlab``) before the first unit and after each one; a change
makes the run inconclusive (``ok`` False, the files named) rather than a mix that looks verified.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-9
DEFAULT_MAX_UNIT_CPU_S = 120.0
# metric names that are timings (re.search): one of these words between '_' or the ends, or a
# '_ms' unit suffix (not a leading 'ms', as in ms_ssim)
TIMING_METRICS = r"(^|_)(cpu_s|wall_s|time_s|train_s|eval_s|seconds|time|sps|s_per_step)(_|$)|_ms(_|$)"
SCALE = "cpu"  # the committed results verify checks
_SEED_FILE = re.compile(r"^seed(\d+)\.json$")


class VerifyError(Exception):
    """A user-facing error (bad arguments, no committed units): one line, exit status 2."""


@dataclass(frozen=True)
class Planned:
    """A committed unit chosen for recomputation."""

    experiment: str
    seed: int
    path: Path
    stored: dict
    cost_s: float | None  # the stored cpu_s (wall_s for a unit that predates CPU-time capture)


@dataclass(frozen=True)
class Skipped:
    experiment: str
    seed: int | None
    reason: str


@dataclass(frozen=True)
class Diff:
    """One metric that differs (or is missing on one side)."""

    metric: str
    stored: Any
    current: Any
    abs_diff: float | None = None  # numbers only
    rel_diff: float | None = None
    why: str = ""

    def describe(self) -> str:
        text = f"{self.metric}: stored {self.stored!r}, now {self.current!r}"
        if self.abs_diff is not None:
            text += f" (abs {self.abs_diff:.3g}, rel {self.rel_diff:.3g})"
        return text + (f" [{self.why}]" if self.why else "")


@dataclass
class UnitCheck:
    """The outcome of recomputing one unit."""

    experiment: str
    seed: int
    stored_cpu_s: float | None
    elapsed_s: float = 0.0
    current_cpu_s: float | None = None
    stored_key: str | None = None
    current_key: str | None = None
    stored_git: dict | None = None  # where the stored unit was computed (units since provenance records)
    stored_host: dict | None = None  # the machine it was computed on (units since host records)
    current_host: dict | None = None  # the machine it was recomputed on
    n_metrics: int = 0
    diffs: list[Diff] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # metrics not compared (timings)
    error: str | None = None  # the recomputation itself failed

    @property
    def key_matches(self) -> bool:
        return self.stored_key == self.current_key

    @property
    def ok(self) -> bool:
        return self.error is None and not self.diffs and self.key_matches

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return "equal" if self.ok else "mismatch"

    def to_json(self) -> dict:
        return {
            "experiment": self.experiment,
            "seed": self.seed,
            "status": self.status,
            "stored_cpu_s": self.stored_cpu_s,
            "current_cpu_s": self.current_cpu_s,
            "elapsed_s": round(self.elapsed_s, 2),
            "stored_key": self.stored_key,
            "current_key": self.current_key,
            "stored_git": self.stored_git,
            "stored_host": self.stored_host,
            "current_host": self.current_host,
            "n_metrics": self.n_metrics,
            "diffs": [d.__dict__ for d in self.diffs],
            "not_compared": self.ignored,
            "error": self.error,
        }


# ----------------------------------------------------------------------------------------------
# choosing the units


def _unit_cost(unit: Mapping[str, Any]) -> float | None:
    for key in ("cpu_s", "wall_s"):  # wall_s only for units written before cpu_s existed
        value = unit.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def plan_units(
    units_dir: Path,
    *,
    experiments: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    max_unit_cpu_s: float | None = DEFAULT_MAX_UNIT_CPU_S,
    max_units: int | None = None,
) -> tuple[list[Planned], list[Skipped]]:
    """Which committed units to recompute, and which were left out (with the reason).

    Default: for each experiment the committed unit with the smallest stored cpu_s (ties: the lowest
    seed). ``seeds``: instead, every committed unit of those seeds. Units whose stored cpu_s exceeds
    ``max_unit_cpu_s`` are skipped; ``max_units`` then keeps only that many, cheapest first."""
    units_dir = Path(units_dir)
    if not units_dir.is_dir():
        raise VerifyError(f"no committed units at {units_dir}")
    on_disk = sorted(d.name for d in units_dir.iterdir() if d.is_dir())
    if experiments:
        unknown = sorted(set(experiments) - set(on_disk))
        if unknown:
            raise VerifyError(f"no committed units of experiment(s) {unknown} (committed: {on_disk})")
        names = [e for e in on_disk if e in set(experiments)]
    else:
        names = on_disk
    planned: list[Planned] = []
    skipped: list[Skipped] = []
    for name in names:
        found: list[Planned] = []
        for path in sorted((units_dir / name).iterdir()):
            m = _SEED_FILE.match(path.name)
            if not m:
                continue
            try:
                unit = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as e:
                skipped.append(Skipped(name, int(m.group(1)), f"unreadable unit file: {e}"))
                continue
            found.append(Planned(name, int(m.group(1)), path, unit, _unit_cost(unit)))
        found.sort(key=lambda p: p.seed)
        if seeds is not None:
            chosen = [p for p in found if p.seed in set(seeds)]
            for s in sorted(set(seeds) - {p.seed for p in found}):
                skipped.append(Skipped(name, s, "no committed unit of this seed"))
        else:
            costed = [p for p in found if p.cost_s is not None]
            if not found:
                skipped.append(Skipped(name, None, "no committed unit files"))
                chosen = []
            elif not costed:
                chosen = [found[0]]  # no recorded cost at all: the lowest seed
            else:
                chosen = [min(costed, key=lambda p: (p.cost_s, p.seed))]
        for p in chosen:
            if max_unit_cpu_s is not None and (p.cost_s is None or p.cost_s > max_unit_cpu_s):
                shown = "unknown" if p.cost_s is None else f"{p.cost_s:.1f}"
                skipped.append(
                    Skipped(name, p.seed, f"stored cpu_s {shown} > --max-unit-cpu-s {max_unit_cpu_s:g}")
                )
            else:
                planned.append(p)
    if max_units is not None and len(planned) > max_units:
        by_cost = sorted(planned, key=lambda p: (p.cost_s or 0.0, p.experiment, p.seed))
        for p in by_cost[max_units:]:
            skipped.append(Skipped(p.experiment, p.seed, f"beyond --max-units {max_units} (cheapest first)"))
        planned = by_cost[:max_units]
    return planned, skipped


# ----------------------------------------------------------------------------------------------
# comparing


def code_fingerprint(package_dir: Path) -> dict[str, str]:
    """{path: sha256} of the Python code a recomputed unit can run: the package's ``.py`` files
    (outside ``results/``, ``tests/`` (no unit imports a test) and hidden folders) and those of the
    installed ``xentlab``. Paths are absolute so that the two trees cannot collide."""
    import xentlab

    roots = [Path(package_dir).resolve(), Path(xentlab.__file__).resolve().parent]
    out: dict[str, str] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).parts
            if rel[0] in ("results", "tests") or any(part.startswith(".") for part in rel):
                continue
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def changed_files(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Paths added, removed or edited between two ``code_fingerprint`` results (sorted)."""
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def compare_value(
    name: str, stored: Any, current: Any, *, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL
) -> Diff | None:
    """None when equal under the tolerances of the module docstring, else the difference."""
    if (
        isinstance(stored, bool)
        or isinstance(current, bool)
        or not (_is_number(stored) and _is_number(current))
    ):
        # bools, strings, None: exactly equal, and of the same kind (True is not 1)
        if type(stored) is type(current) and stored == current:
            return None
        return Diff(name, stored, current, why="not equal")
    if isinstance(stored, int) and isinstance(current, int):
        if stored == current:
            return None
        d = abs(stored - current)
        return Diff(name, stored, current, float(d), d / max(abs(stored), 1), "integers differ")
    s, c = float(stored), float(current)
    if s == c:
        return None
    d = abs(s - c)
    rel = d / abs(s) if s != 0 else math.inf
    if d <= atol + rtol * abs(s):
        return None
    return Diff(name, stored, current, d, rel)


def compare_metrics(
    stored: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    ignore: str | None = None,
) -> list[Diff]:
    """Every metric that differs, is missing now, or is new; the largest relative difference first.
    Metrics whose name matches the regex ``ignore`` are left out."""
    skip = re.compile(ignore) if ignore else None
    diffs = []
    for name in stored:
        if skip is not None and skip.search(name):
            continue
        if name not in current:
            diffs.append(Diff(name, stored[name], None, why="not produced any more"))
            continue
        d = compare_value(name, stored[name], current[name], rtol=rtol, atol=atol)
        if d is not None:
            diffs.append(d)
    for name in current:
        if name not in stored and not (skip is not None and skip.search(name)):
            diffs.append(Diff(name, None, current[name], why="new metric, not in the stored unit"))

    def badness(d: Diff) -> float:
        return math.inf if d.rel_diff is None else d.rel_diff

    return sorted(diffs, key=badness, reverse=True)


# ----------------------------------------------------------------------------------------------
# recomputing one unit (in a child process)


def _child_env(cache: Path | None = None) -> dict[str, str]:
    """The child's environment: one BLAS thread; with ``cache``, an xentlab cache of its own."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = "1"  # the runner sets torch threads = 1; BLAS outside torch follows this
    if cache is not None:
        env["XENTLAB_CACHE"] = str(cache)
    return env


def recompute_unit(
    reproduce_py: Path,
    planned: Planned,
    work_dir: Path,
    *,
    python: str = sys.executable,
    timeout_s: float | None = None,
    cold_cache: bool = False,
) -> tuple[dict | None, str | None]:
    """Recompute one unit in a fresh Python process; (the new unit record, None) or (None, error).

    The unit reads the shared xentlab cache (``$XENTLAB_CACHE``): datasets, pre-trained models that
    units share. Their keys follow the code that builds them, but an artifact written by other code
    under the same key (a pilot script, say) would be trusted. ``cold_cache`` gives the unit an empty
    cache of its own, so that everything is rebuilt (slower; fails for inputs that cannot be rebuilt
    offline)."""
    out_dir = work_dir / f"{planned.experiment}-seed{planned.seed}"
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "child.log"
    cmd = [
        python,
        "-m",
        "xentlab.repro.verify",
        "--unit",
        str(reproduce_py),
        planned.experiment,
        str(planned.seed),
        str(out_dir),
    ]
    try:
        with open(log, "w") as f:
            env = _child_env(out_dir / "cache" if cold_cache else None)
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout_s:g} s"
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()[-8:]
        return None, f"exit {proc.returncode}: " + " | ".join(tail)
    unit_path = out_dir / "units" / planned.experiment / f"seed{planned.seed}.json"
    return json.loads(unit_path.read_text()), None


def _child_main(reproduce_py: str, experiment: str, seed: str, out_dir: str) -> int:
    """Run one cpu-scale unit exactly as the runner does, writing it under ``out_dir/units``."""
    from xentlab.repro.runner import UnitJob, run_unit
    from xentlab.repro.units import unit_key, unit_paths
    from xentlab.testing.reproduce_module import load_reproduce

    path = Path(reproduce_py).resolve()
    sys.path.insert(0, str(path.parent))  # as `python reproduce.py` would have it
    module = load_reproduce(path)
    found = {e.name: e for e in module.EXPERIMENTS}
    if experiment not in found:
        print(f"error: {path} has no experiment {experiment!r} any more", file=sys.stderr)
        return 3
    exp = found[experiment]
    config = exp.config(SCALE)
    if config is None:
        print(f"error: experiment {experiment!r} has no {SCALE} config any more", file=sys.stderr)
        return 3
    unit_path, log_path = unit_paths(Path(out_dir) / "units", exp.name, int(seed))
    job = UnitJob(
        exp,
        dict(config),
        int(seed),
        unit_key(exp, config, int(seed), scale=SCALE),
        unit_path,
        log_path,
        SCALE,
        "cpu",
        1,  # torch threads, as every cpu-scale unit ran
        False,
    )
    run_unit(job)
    return 0


# ----------------------------------------------------------------------------------------------
# the whole check of one package


def verify_package(
    package_dir: Path,
    *,
    experiments: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    max_unit_cpu_s: float | None = DEFAULT_MAX_UNIT_CPU_S,
    max_units: int | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    ignore: str | None = TIMING_METRICS,
    timeout_s: float | None = None,
    cold_cache: bool = False,
    echo: Callable[[str], None] = print,
) -> dict:
    """Recompute the chosen committed units of ``package_dir`` and compare; returns a summary dict
    (``"ok"`` is False on any mismatch, key mismatch or failed recomputation, and when the code
    changed during the run)."""
    package_dir = Path(package_dir).resolve()
    reproduce_py = package_dir / "reproduce.py"
    if not reproduce_py.is_file():
        raise VerifyError(f"no reproduce.py in {package_dir}")
    planned, skipped = plan_units(
        package_dir / "results" / SCALE / "units",
        experiments=experiments,
        seeds=seeds,
        max_unit_cpu_s=max_unit_cpu_s,
        max_units=max_units,
    )
    name = package_dir.name
    echo(
        f"{name}: {len(planned)} unit(s) to recompute, {len(skipped)} skipped (rtol {rtol:g}, atol {atol:g}"
        + (f"; not compared: metrics matching {ignore!r}" if ignore else "")
        + ")"
    )
    for s in skipped:
        echo(f"  skip {s.experiment}" + ("" if s.seed is None else f" seed {s.seed}") + f": {s.reason}")
    checks: list[UnitCheck] = []
    code_at_start = code_fingerprint(package_dir)
    code_changed: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"xentlab-verify-{name}-") as tmp:
        for i, p in enumerate(planned, 1):
            shown = "?" if p.cost_s is None else f"{p.cost_s:.1f}"
            echo(f"  [{i}/{len(planned)}] {p.experiment} seed {p.seed} (stored cpu_s {shown}) ...")
            t0 = time.perf_counter()
            current, error = recompute_unit(
                reproduce_py, p, Path(tmp), timeout_s=timeout_s, cold_cache=cold_cache
            )
            check = UnitCheck(p.experiment, p.seed, p.cost_s, elapsed_s=time.perf_counter() - t0)
            check.stored_key = p.stored.get("key")
            stored_git = p.stored.get("git")
            check.stored_git = stored_git if isinstance(stored_git, dict) else None
            stored_host = p.stored.get("host")
            check.stored_host = stored_host if isinstance(stored_host, dict) else None
            check.error = error
            if current is not None:
                check.current_key = current.get("key")
                check.current_cpu_s = current.get("cpu_s")
                current_host = current.get("host")
                check.current_host = current_host if isinstance(current_host, dict) else None
                check.n_metrics = len(p.stored.get("metrics", {}))
                stored_metrics = p.stored.get("metrics", {})
                check.diffs = compare_metrics(
                    stored_metrics, current["metrics"], rtol=rtol, atol=atol, ignore=ignore
                )
                if ignore:
                    check.ignored = [m for m in stored_metrics if re.search(ignore, m)]
            checks.append(check)
            echo("      " + _describe(check))
            if not code_changed:
                code_changed = changed_files(code_at_start, code_fingerprint(package_dir))
                if code_changed:
                    echo(
                        f"      CODE CHANGED while verifying (noticed after unit {i}): "
                        f"{', '.join(code_changed[:5])}" + (" ..." if len(code_changed) > 5 else "")
                    )
    n_bad = sum(not c.ok for c in checks)
    worst = _worst(checks)
    summary = {
        "package": name,
        "ok": n_bad == 0 and not code_changed,
        "checked": len(checks),
        "equal": sum(c.ok for c in checks),
        "mismatching": sum(c.status == "mismatch" for c in checks),
        "errors": sum(c.status == "error" for c in checks),
        "worst": worst.describe() if worst else None,
        "rtol": rtol,
        "atol": atol,
        "ignore": ignore,
        "units": [c.to_json() for c in checks],
        "skipped": [s.__dict__ for s in skipped],
        "code_changed": code_changed,
    }
    echo(
        f"{name}: {summary['equal']}/{len(checks)} equal, {summary['mismatching']} mismatching, "
        f"{summary['errors']} failed" + (f"; worst: {summary['worst']}" if worst else "")
    )
    if code_changed:
        echo(
            f"{name}: INCONCLUSIVE: {len(code_changed)} code file(s) changed during the run, so its units may "
            "have run different code; run verify again on an unchanging tree"
        )
    if not checks:  # exit status 0 (nothing differed), but say loudly that nothing was checked either
        echo(f"{name}: NOTHING VERIFIED: every unit was skipped (see above; e.g. raise --max-unit-cpu-s)")
    return summary


def _describe(c: UnitCheck) -> str:
    elapsed = f"{c.elapsed_s:.1f} s" + (
        "" if c.current_cpu_s is None else f" (unit cpu_s {c.current_cpu_s:.1f})"
    )
    where = _stored_at(c.stored_git)
    if c.error is not None:
        return f"ERROR after {elapsed}: {c.error}{where}"
    lines = []
    if c.diffs:
        lines.append(
            f"MISMATCH after {elapsed}: {len(c.diffs)} of {c.n_metrics} metric(s) differ{where}; worst:"
        )
        lines += [f"        {d.describe()}" for d in c.diffs[:5]]
        host_note = _host_note(c.stored_host, c.current_host)
        if host_note:
            lines.append(f"      {host_note}")
    else:
        n = c.n_metrics - len(c.ignored)
        lines.append(f"equal after {elapsed}: all {n} compared metric(s){where}")
    if c.ignored:
        lines.append(f"      not compared (timings): {', '.join(c.ignored)}")
    if not c.key_matches:
        lines.append(
            f"      KEY MISMATCH: stored {c.stored_key}, today's {c.current_key} (the committed unit is not "
            "from today's config/version; the workspace contract test should fail too)"
        )
    return "\n".join(lines)


def _stored_at(git: Mapping[str, Any] | None) -> str:
    """The suffix "; stored unit computed at git <commit> (dirty)" for a unit that records it, else ""."""
    if not git or not git.get("commit"):
        return ""
    return f"; stored unit computed at git {git['commit'][:12]}" + (" (dirty)" if git.get("dirty") else "")


def _host_text(host: Mapping[str, Any]) -> str:
    parts = [str(host.get("cpu", "?")), f"torch CPU capability {host.get('cpu_capability', '?')}",
             f"torch {host.get('torch', '?')}"]  # fmt: skip
    if host.get("cuda"):
        parts.append(str(host["cuda"]))
    return ", ".join(parts)


def _host_note(stored: Mapping[str, Any] | None, current: Mapping[str, Any] | None) -> str:
    """Beside a mismatch: whether the stored unit came from another machine (bf16 and some fp32 CPU
    kernels dispatch on the instruction set, so other hardware can change low-order bits that
    training amplifies), or "" when both ran on the same kind of machine."""
    if current is None:
        return ""
    if stored is None:
        return f"the stored unit records no host (computed before host records); recomputed on {_host_text(current)}"
    if dict(stored) == dict(current):
        return ""
    return f"OTHER HOST: stored on {_host_text(stored)}; recomputed on {_host_text(current)}"


def _worst(checks: Sequence[UnitCheck]) -> Diff | None:
    diffs = [d for c in checks for d in c.diffs]
    if not diffs:
        return None
    return max(diffs, key=lambda d: math.inf if d.rel_diff is None else d.rel_diff)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--unit":
        raise SystemExit(_child_main(*sys.argv[2:]))
    print(
        "usage: python -m xentlab.repro.verify --unit REPRODUCE_PY EXPERIMENT SEED OUT_DIR", file=sys.stderr
    )
    raise SystemExit(2)
