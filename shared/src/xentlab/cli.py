"""The ``xentlab`` command: list packages and verdicts, regenerate the README ledger, start a package."""

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
    try:
        args = p.parse_args(argv)
        root = find_root()
        if args.cmd == "list":
            return cmd_list(root, args.package)
        if args.cmd == "ledger":
            return cmd_ledger(root, args.check)
        return cmd_new(root, args.name, args.title, args.arxiv)
    except WorkspaceError as e:
        print(f"xentlab: error: {e}", file=sys.stderr)
        return 2


def _entry() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    _entry()
