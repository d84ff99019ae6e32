"""The command line every reproduce.py shares, and the run that writes result.json and report.md."""

from __future__ import annotations

import argparse
import inspect
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xentlab.data.cache import atomic_write_json, atomic_write_text
from xentlab.repro.environment import capture_environment, code_git, peak_memory_mb, resolve_device
from xentlab.repro.report import console_claims, render_report
from xentlab.repro.runner import (
    Results,
    aggregate,
    check_derived_seeds,
    judge,
    merge_step_logs,
    run_experiments,
)
from xentlab.repro.spec import SCALES, Claim, Derived, Experiment, Paper, ReproError
from xentlab.repro.units import provenance_summary

# 2: adds "experiment_seeds" and each claim's "seeds"; a metric's per_seed names its own seeds.
# A new optional field that changes no existing field's meaning keeps the version (as "cpu_time_s"
# did in schema 1, and "computation" in schema 2): readers use it when present.
RESULT_SCHEMA_VERSION = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line (no usage dump) and exits 2."""

    def error(self, message: str):  # noqa: D401
        raise ReproError(message)


def build_parser(
    paper: Paper, default_seeds: Mapping[str, Sequence[int]], default_workers: int | Mapping[str, int]
) -> argparse.ArgumentParser:
    p = _Parser(
        prog=f"reproduce.py ({paper.package})",
        description=f"Reproduce {paper.title!r}: runs the experiments over seeds and checks the paper's claims.",
    )
    p.add_argument(
        "--scale",
        default="cpu",
        choices=SCALES,
        help="smoke: <30 s pipeline check; cpu (default): the claims on 2 CPU cores in minutes; full: the paper's setting on GPUs",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help=f"seeds to run (default per scale: {dict(default_seeds)}); an experiment that declares its own "
        "seeds for the scale (Experiment.seeds) runs those instead",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="output directory (default: the package's results/<scale>/)"
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--check", action="store_true", help="exit 1 unless every claim holds")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"parallel worker processes, one unit each (default: {_per_scale(default_workers)})",
    )
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads per unit (1 is fastest on a loaded 2-core box)"
    )
    p.add_argument(
        "--fresh", action="store_true", help="recompute every unit instead of resuming finished ones"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _per_scale(default_workers: int | Mapping[str, int]) -> Any:
    return dict(default_workers) if isinstance(default_workers, Mapping) else default_workers


def _default_workers(default_workers: int | Mapping[str, int], scale: str) -> int:
    """A package may give one worker count or one per scale (e.g. 2 on CPU, 1 on one GPU)."""
    if isinstance(default_workers, Mapping):
        return int(default_workers.get(scale, 1))
    return int(default_workers)


def _check_writable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ReproError(f"--out {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as e:
        raise ReproError(f"cannot write to --out {out}: {e.strerror or e}") from None


def _caller_dir() -> Path:
    for frame in inspect.stack()[2:]:
        if not frame.filename.startswith(str(Path(__file__).parent)):
            return Path(frame.filename).resolve().parent
    return Path.cwd()


def run_cli(
    paper: Paper,
    experiments: Sequence[Experiment],
    claims: Sequence[Claim],
    *,
    derived: Sequence[Derived] = (),
    figures: Callable[[Results, Path], Sequence[Path]] | None = None,
    default_seeds: Mapping[str, Sequence[int]] | None = None,
    default_workers: int | Mapping[str, int] = 1,
    argv: Sequence[str] | None = None,
    package_dir: Path | None = None,
) -> dict[str, Any]:
    """Parse the command line, run, write the results; returns the result dict.

    A bad argument or an impossible setting is reported as one ``error:`` line with exit status 2,
    before anything is written. With ``--check``, exits 1 when any claim does not hold.
    """
    package_dir = package_dir or _caller_dir()
    default_seeds = default_seeds or {"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]}
    try:
        return _run(
            paper,
            experiments,
            claims,
            derived,
            figures,
            default_seeds,
            default_workers,
            list(sys.argv[1:] if argv is None else argv),
            package_dir,
        )
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("\ninterrupted: finished units are kept; run the same command again to resume", file=sys.stderr)
        raise SystemExit(130) from None


def _run(paper, experiments, claims, derived, figures, default_seeds, default_workers, argv, package_dir):
    args = build_parser(paper, default_seeds, default_workers).parse_args(argv)
    if args.workers is None:
        args.workers = _default_workers(default_workers, args.scale)
    seeds = list(args.seeds if args.seeds is not None else default_seeds.get(args.scale, [0]))
    if any(s < 0 for s in seeds):
        raise ReproError(f"seeds must be non-negative integers, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ReproError(f"seeds must be distinct, got {seeds}")
    if args.workers < 1 or args.threads < 1:
        raise ReproError("--workers and --threads must be at least 1")
    if not any(e.config(args.scale) is not None for e in experiments):
        raise ReproError(f"{paper.package} has no experiment at scale {args.scale!r} (see its README)")
    device = resolve_device(args.device)
    out = (args.out if args.out is not None else package_dir / "results" / args.scale).expanduser().resolve()
    _check_writable(out)

    claims = [c for c in claims if c.scales is None or args.scale in c.scales]
    derived = [d for d in derived if d.scales is None or args.scale in d.scales]
    check_derived_seeds(experiments, derived, scale=args.scale, seeds=seeds)  # before any unit runs
    computing_git = code_git(package_dir)  # once per run; every unit computed now records it
    t0 = time.perf_counter()
    results = run_experiments(
        experiments,
        scale=args.scale,
        seeds=seeds,
        out_dir=out,
        device=device,
        workers=args.workers,
        threads=args.threads,
        fresh=args.fresh,
        show_progress=not args.quiet,
        git=computing_git,
    )
    aggregate(results, derived)
    verdicts = judge(claims, results)
    merge_step_logs(out, results)
    figure_paths = [str(Path(p).name) for p in (figures(results, out) if figures else [])]

    shown = [a for a in argv if a not in ("--fresh", "--quiet")]
    command = f"uv run --package {paper.package} packages/{paper.package}/reproduce.py " + shlex.join(shown)
    result = {
        "schema_version": RESULT_SCHEMA_VERSION,
        "paper": {"title": paper.title, "arxiv": paper.arxiv, "code": paper.code, "venue": paper.venue},
        "package": paper.package,
        "scale": args.scale,
        "seeds": seeds,  # the run's seed list (--seeds or the default), as in schema 1
        # schema 2: the seeds each experiment ran (its own Experiment.seeds at this scale, else "seeds")
        "experiment_seeds": results.exp_seeds,
        "command": command.strip(),
        "config": results.configs,
        "metrics": results.metrics,
        "claims": verdicts,
        "claims_summary": {
            v: sum(c["verdict"] == v for c in verdicts) for v in ("holds", "fails", "inconclusive")
        }
        | {"total": len(verdicts)},
        "figures": figure_paths,
        "wall_time_s": round(results.unit_wall_s, 2),
        "cpu_time_s": None if results.unit_cpu_s is None else round(results.unit_cpu_s, 2),
        "session_wall_s": round(time.perf_counter() - t0, 2),
        "units": {"computed": results.computed_units, "reused": results.reused_units},
        # where and how heavily the units this result uses were computed (from their unit files; a
        # resumed run's session fields below describe the session, not the computation)
        "computation": provenance_summary(
            [unit for by_seed in results.per_seed.values() for unit in by_seed.values()]
        ),
        # this session's process and its children (a fully resumed run: the rendering only)
        "peak_memory_mb": peak_memory_mb(device),
        # this session's versions, device and git state (at rendering; units record their own git)
        "environment": capture_environment(paper.package, device, package_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    result["environment"]["argv"] = ["reproduce.py", *argv]
    atomic_write_json(out / "result.json", result)
    atomic_write_text(out / "report.md", render_report(result, figure_paths))

    print(f"\n{paper.package}: {paper.title}")
    print(console_claims(verdicts, seeds))
    s = result["claims_summary"]
    print(
        f"\n{s['holds']}/{s['total']} claims hold ({s['fails']} fail, {s['inconclusive']} inconclusive); "
        f"results in {_short(out)}"
    )
    if args.check and s["holds"] != s["total"]:
        raise SystemExit(1)
    return result


def _short(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
