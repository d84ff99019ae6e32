"""The ``xentlab`` command: list packages and verdicts, regenerate the README ledger, start a package,
verify that committed units are what today's code computes."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from xentlab.workspace import (
    WorkspaceError,
    find_root,
    get_package,
    ledger_table,
    packages,
    render_ledger,
)

TEMPLATE_DIR = Path(__file__).parent / "templates" / "package"
MARK = {"holds": "holds", "fails": "FAILS", "inconclusive": "inconclusive"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise WorkspaceError(message)


def cmd_list(root: Path, name: str | None) -> int:
    if name:
        p = get_package(root, name)
        print(f"{p.name}: {p.title}")
        if p.result is None:
            print("  no committed cpu results (run its reproduce.py)")
            return 0
        for c in p.result["claims"]:
            value = c.get("value")
            shown = "n/a" if value is None else f"{value:.4g}"
            print(
                f"  {MARK[c['verdict']]:<12} {c['id']:<28} ours {shown:<10} {c['check']:<22} paper: {c.get('paper', '')}"
            )
        return 0
    for p in packages(root):
        held = p.held
        status = "not run" if held is None else f"{held[0]}/{held[1]} claims hold"
        print(f"{p.name:<22} {status:<18} {p.title}")
        if p.result:
            print("    " + ", ".join(f"{c['id']}: {MARK[c['verdict']]}" for c in p.result["claims"]))
    return 0


def cmd_ledger(root: Path, check: bool) -> int:
    readme = root / "README.md"
    text = readme.read_text()
    new = render_ledger(text, ledger_table(root))
    if check:
        if new != text:
            print(
                "README.md ledger is out of date with the committed results: run `uv run xentlab ledger`",
                file=sys.stderr,
            )
            return 1
        print("README.md ledger is up to date")
        return 0
    if new != text:
        readme.write_text(new)
        print("README.md ledger updated")
    else:
        print("README.md ledger already up to date")
    return 0


def cmd_new(root: Path, name: str, title: str, arxiv: str | None) -> int:
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name):
        raise WorkspaceError(f"package name {name!r} must be lowercase words joined by '-' (e.g. my-paper)")
    dest = root / "packages" / name
    if dest.exists():
        raise WorkspaceError(f"packages/{name} already exists")
    module = name.replace("-", "_")
    subs = {"{{name}}": name, "{{module}}": module, "{{title}}": title, "{{arxiv}}": arxiv or ""}
    for src in sorted(TEMPLATE_DIR.rglob("*")):
        if src.is_dir() or "__pycache__" in src.parts:
            continue
        rel = src.relative_to(TEMPLATE_DIR).as_posix().replace("__module__", module).removesuffix(".tmpl")
        text = src.read_text()
        for k, v in subs.items():
            text = text.replace(k, v)
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    print(
        f"created packages/{name}; next: uv sync --all-packages && "
        f"uv run --package {name} packages/{name}/reproduce.py --scale smoke"
    )
    return 0


def cmd_verify(root: Path, args: argparse.Namespace) -> int:
    # imported here: xentlab.repro pulls in torch, which `list` / `ledger` / `new` do not need
    import json

    from xentlab.repro.verify import (
        DEFAULT_ATOL,
        DEFAULT_MAX_UNIT_CPU_S,
        DEFAULT_RTOL,
        TIMING_METRICS,
        VerifyError,
        verify_package,
    )

    # the parser leaves these None so that the defaults live in one place (xentlab.repro.verify)
    if args.max_unit_cpu_s is None:
        args.max_unit_cpu_s = DEFAULT_MAX_UNIT_CPU_S
    if args.rtol is None:
        args.rtol = DEFAULT_RTOL
    if args.atol is None:
        args.atol = DEFAULT_ATOL
    if args.max_unit_cpu_s < 0:
        raise WorkspaceError("--max-unit-cpu-s must be >= 0")
    if args.max_units is not None and args.max_units < 1:
        raise WorkspaceError("--max-units must be >= 1")
    if args.rtol < 0 or args.atol < 0:
        raise WorkspaceError("--rtol and --atol must be >= 0")
    ignore = TIMING_METRICS if args.ignore is None else (args.ignore or None)
    try:
        re.compile(ignore or "")
    except re.error as e:
        raise WorkspaceError(f"--ignore {args.ignore!r} is not a regular expression: {e}") from None
    dirs = [get_package(root, name).path for name in args.package]
    summaries = []
    for d in dirs:
        try:
            summaries.append(
                verify_package(
                    d,
                    experiments=args.experiments,
                    seeds=args.seeds,
                    max_unit_cpu_s=args.max_unit_cpu_s,
                    max_units=args.max_units,
                    rtol=args.rtol,
                    atol=args.atol,
                    ignore=ignore,
                    timeout_s=args.timeout,
                    cold_cache=args.cold_cache,
                )
            )
        except VerifyError as e:
            raise WorkspaceError(f"{d.name}: {e}") from None
        if args.json is not None:  # after each package, so an interrupted run keeps what it has
            args.json.write_text(json.dumps(summaries, indent=1) + "\n")
    bad = [s["package"] for s in summaries if not s["ok"]]
    unchecked = [s["package"] for s in summaries if s["checked"] == 0]
    if len(summaries) > 1:
        print(
            f"\nverified {len(summaries)} packages; not reproduced: {', '.join(bad) or 'none'}"
            f"; nothing checked: {', '.join(unchecked) or 'none'}"
        )
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="xentlab", description="xentlab workspace tools")
    sub = p.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="packages, papers and their claims' verdicts (committed cpu results)")
    ls.add_argument("package", nargs="?")
    lg = sub.add_parser("ledger", help="regenerate the README ledger from the committed results")
    lg.add_argument("--check", action="store_true", help="exit 1 if the README ledger is out of date")
    nw = sub.add_parser("new", help="start a paper package from the template")
    nw.add_argument("name")
    nw.add_argument("--title", default="TODO: paper title")
    nw.add_argument("--arxiv", default=None)
    vf = sub.add_parser(
        "verify",
        help="recompute committed cpu units in fresh processes and compare their metrics (exit 1 on a mismatch)",
    )
    vf.add_argument("package", nargs="+", help="one or more packages")
    vf.add_argument("--experiments", nargs="+", default=None, help="only these experiments (default: all)")
    vf.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="recompute the committed units of these seeds (default: each experiment's cheapest unit by stored cpu_s)",
    )
    vf.add_argument(
        "--max-unit-cpu-s",
        type=float,
        default=None,
        help="skip units whose stored cpu_s exceeds this (default 120)",
    )
    vf.add_argument(
        "--max-units", type=int, default=None, help="at most this many units per package, cheapest first"
    )
    vf.add_argument(
        "--rtol", type=float, default=None, help="relative tolerance for float metrics (default 1e-6)"
    )
    vf.add_argument(
        "--atol", type=float, default=None, help="absolute tolerance for float metrics (default 1e-9)"
    )
    vf.add_argument(
        "--ignore",
        default=None,
        metavar="REGEX",
        help="metrics not compared (re.search on the name); default: timings (xentlab.repro.verify."
        "TIMING_METRICS); '' compares every metric",
    )
    vf.add_argument(
        "--timeout", type=float, default=None, help="wall-clock limit per unit in seconds (default none)"
    )
    vf.add_argument(
        "--cold-cache",
        action="store_true",
        help="give each unit an empty xentlab cache (rebuild shared datasets/models instead of trusting them)",
    )
    vf.add_argument("--json", type=Path, default=None, help="also write the per-unit outcome as JSON here")
    try:
        args = p.parse_args(argv)
        root = find_root()
        if args.cmd == "list":
            return cmd_list(root, args.package)
        if args.cmd == "ledger":
            return cmd_ledger(root, args.check)
        if args.cmd == "verify":
            return cmd_verify(root, args)
        return cmd_new(root, args.name, args.title, args.arxiv)
    except WorkspaceError as e:
        print(f"xentlab: error: {e}", file=sys.stderr)
        return 2


def _entry() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    _entry()
