"""report.md and the console summary: the claims table (the paper's number beside ours), metrics, figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

VERDICT_MARK = {"holds": "✅ holds", "fails": "❌ fails", "inconclusive": "➖ inconclusive"}


def fmt_num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    ax = abs(x)
    if ax != 0 and (ax >= 1e5 or ax < 1e-3):
        return f"{x:.3e}"
    return f"{x:.{digits}g}"


def fmt_claim_value(c: Mapping[str, Any], run_seeds: Sequence[int] | None = None) -> str:
    """The "ours" cell; it names the seeds when the claim's metric was measured on other seeds than the
    run's (experiments with their own ``Experiment.seeds``)."""
    if c.get("value") is None:
        return "n/a"
    own = _own_seeds(c, run_seeds)
    if c["agg"] == "all":
        return c.get("reason", "") + (f" (seeds {own})" if own else "")
    if c["agg"] in ("min", "max"):
        return f"{fmt_num(c['value'])} ({c['agg']} of {c['n']} seeds{': ' + own if own else ''})"
    ci = c.get("ci95")
    spread = f" ± {fmt_num(c.get('std'), 2)}" if c.get("n", 0) > 1 else ""
    ci_txt = f" [{fmt_num(ci[0])}, {fmt_num(ci[1])}]" if ci and c.get("n", 0) > 1 else ""
    return f"{fmt_num(c['value'])}{spread}{ci_txt} (n={c['n']}{'; seeds ' + own if own else ''})"


def seed_list(seeds: Sequence[Any]) -> str:
    """``[3, 4, 5]`` -> ``"3, 4, 5"``."""
    return ", ".join(str(s) for s in seeds)


def _own_seeds(c: Mapping[str, Any], run_seeds: Sequence[int] | None) -> str:
    """The claim's seeds ("3, 4, 5") when its metric was measured on other seeds than the run's, else ""."""
    seeds = c.get("seeds")
    if not seeds or run_seeds is None or [int(s) for s in seeds] == [int(s) for s in run_seeds]:
        return ""
    return seed_list(seeds)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def claims_table(claims: Sequence[Mapping[str, Any]], run_seeds: Sequence[int] | None = None) -> str:
    """The claims with the paper's number beside ours; a claim measured on its own experiments' seeds
    (``Experiment.seeds``) names them in the "ours" cell."""
    rows = ["| claim | statement | paper | ours | check | verdict |", "|---|---|---|---|---|---|"]
    for c in claims:
        rows.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    f"`{c['id']}`",
                    c["statement"],
                    c.get("paper") or "",
                    fmt_claim_value(c, run_seeds),
                    f"`{c['metric']}` {c['check']}",
                    VERDICT_MARK[c["verdict"]],
                )
            )
            + " |"
        )
    return "\n".join(rows)


def metrics_table(metrics: Mapping[str, Mapping[str, Any]], run_seeds: Sequence[int] | None = None) -> str:
    """One table per seed list, with a column per seed named by the seed (``seed 3``).

    Metrics of experiments that ran their own seeds (``Experiment.seeds``), and derived metrics on
    the seeds their inputs share, get their own table under a line naming those seeds; the run's
    seed list (``run_seeds``) comes first."""
    groups: dict[tuple[str, ...], list[str]] = {}
    if run_seeds is not None:
        groups[tuple(str(s) for s in run_seeds)] = []
    for key, m in metrics.items():
        groups.setdefault(tuple(m["per_seed"]), []).append(key)
    groups = {seeds: keys for seeds, keys in groups.items() if keys}
    blocks = []
    for seeds, keys in groups.items():
        head = "| metric | mean | std | 95% CI | n | " + " | ".join(f"seed {s}" for s in seeds) + " |"
        rows = [head, "|---|---|---|---|---|" + "---|" * len(seeds)]
        for key in keys:
            m = metrics[key]
            ci = m.get("ci95")
            per = " | ".join(fmt_num(m["per_seed"][s]) for s in seeds)
            rows.append(
                f"| `{key}` | {fmt_num(m['mean'])} | {fmt_num(m['std'], 2)} | "
                f"{f'[{fmt_num(ci[0])}, {fmt_num(ci[1])}]' if ci else 'n/a'} | {m['n']} | {per} |"
            )
        title = [f"Seeds {seed_list(seeds)}:", ""] if len(groups) > 1 else []
        blocks.append("\n".join(title + rows))
    return "\n\n".join(blocks)


def _own_seeds_line(result: Mapping[str, Any]) -> str:
    """The headline's note on the experiments that ran other seeds than the run's ("" when none did)."""
    run = [int(s) for s in result["seeds"]]
    by_list: dict[tuple[int, ...], list[str]] = {}
    for exp, seeds in (result.get("experiment_seeds") or {}).items():
        if [int(s) for s in seeds] != run:
            by_list.setdefault(tuple(int(s) for s in seeds), []).append(f"`{exp}`")
    if not by_list:
        return ""
    parts = [f"{', '.join(exps)} {list(seeds)}" for seeds, exps in by_list.items()]
    return " Experiments on their own seeds: " + "; ".join(parts) + "."


def _compute_line(result: Mapping[str, Any]) -> str:
    """CPU time first (it does not inflate on a shared machine), then the summed unit wall time."""
    cpu = result.get("cpu_time_s")
    lead = (
        f"Compute: {cpu:.0f} CPU-s (summed unit wall time {result['wall_time_s']:.0f} s"
        if cpu is not None
        else f"Compute: summed unit wall time {result['wall_time_s']:.0f} s (CPU time not recorded"
    )
    return (
        f"{lead}; this session {result['session_wall_s']:.0f} s, {result['units']['reused']} units resumed)."
    )


def render_report(result: Mapping[str, Any], figures: Sequence[str]) -> str:
    paper = result["paper"]
    held = sum(c["verdict"] == "holds" for c in result["claims"])
    link = (
        f" ([arXiv {paper['arxiv']}](https://arxiv.org/abs/{paper['arxiv']}))" if paper.get("arxiv") else ""
    )
    env = result["environment"]
    lines = [
        f"# {result['package']}: {paper['title']}{link}",
        "",
        f"Scale **{result['scale']}**, seeds {result['seeds']}, device `{env['device']}`; "
        f"{held}/{len(result['claims'])} claims hold.{_own_seeds_line(result)} {_compute_line(result)}",
        "",
        f"Reproduce: `{result['command']}`",
        "",
        "## Claims",
        "",
        "Verdicts: for a mean over seeds, *holds* when the mean and the whole bootstrap 95% CI satisfy "
        "the check, *fails* when they all violate it, *inconclusive* otherwise; min/max claims are "
        "worst cases over seeds.",
        "",
        claims_table(result["claims"], result["seeds"]),
        "",
    ]
    notes = [c for c in result["claims"] if c.get("note")]
    if notes:
        lines += ["Notes:", ""] + [f"- `{c['id']}`: {c['note']}" for c in notes] + [""]
    if figures:
        lines += ["## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in figures] + [""]
    lines += ["## Metrics", "", metrics_table(result["metrics"], result["seeds"]), "", "## Configuration", ""]
    for exp, cfg in result["config"].items():
        lines += [f"- `{exp}`: " + ", ".join(f"{k}={v}" for k, v in cfg.items())]
    git = env.get("git") or {}
    lines += [
        "",
        "## Environment",
        "",
        f"python {env['python']}, torch {env['torch']}, triton {env.get('triton')}, "
        f"numpy {env.get('numpy')}, {env['package']['name']} {env['package']['version']}, "
        f"xentlab {env.get('xentlab')}; {env['device_name']}.",
        "",
        f"This session (it rendered this report): git {(git.get('commit') or 'n/a')[:12]}"
        f"{' (dirty)' if git.get('dirty') else ''}; peak RSS {result['peak_memory_mb']['rss_mb']} MB.",
        "",
    ]
    if result.get("computation"):  # result.json files written before it have none
        lines += [computation_line(result["computation"]), ""]
    return "\n".join(lines)


def _units(n: int) -> str:
    return f"{n} unit" + ("" if n == 1 else "s")


def _and(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def computation_line(comp: Mapping[str, Any]) -> str:
    """Where and how heavily the report's units were computed (result.json's ``computation``): the
    commits with their units, the units that predate these records, and the largest peak RSS the
    computing processes had when a unit finished (an upper bound for each unit)."""
    n, old, commits = comp["units"], comp["without_provenance"], comp["git"]

    def at(g: Mapping[str, Any], prefix: str = "") -> str:
        if g["commit"] is None:
            return "outside a git checkout"
        return f"{prefix}`{g['commit'][:12]}`" + (" (dirty)" if g["dirty"] else "")

    if not commits:
        where = "Computed at: not recorded"
        count = f"{_units(n)}, which predate{'s' if n == 1 else ''} provenance records"
    else:
        one = commits[0] if len(commits) == 1 and not old else None  # every unit at one commit
        if one is not None and one["commit"] is None:
            where = "Computed outside a git checkout"
        elif one is not None:
            where = f"Computed at git `{one['commit'][:12]}`"
        else:  # each commit with its units (those that predate the records are counted after)
            if all(g["commit"] is not None for g in commits):
                where = "Computed at git " + _and([f"{at(g)} for {_units(g['units'])}" for g in commits])
            else:
                where = "Computed " + _and([f"{at(g, 'at git ')} for {_units(g['units'])}" for g in commits])
        dirty = "dirty checkout; " if one is not None and one["dirty"] else ""
        count = (
            dirty
            + _units(n)
            + (f"; {_units(old)} predate{'s' if old == 1 else ''} provenance records" if old else "")
        )
    span = comp.get("finished_at")
    when = f", finished {span['first']} to {span['last']}" if span else ""
    if comp.get("peak_rss_mb") is None:
        memory = "peak RSS of the computing processes not recorded"
    else:
        memory = f"peak RSS of the computing processes <= {comp['peak_rss_mb']} MB"
        if comp.get("peak_children_rss_mb") is not None:
            memory += f" (their child processes <= {comp['peak_children_rss_mb']} MB)"
        if comp.get("peak_cuda_mb") is not None:
            memory += f", peak CUDA allocation <= {comp['peak_cuda_mb']} MB"
        if old:
            memory += f" (the {_units(n - old)} that record it)"
    return f"{where} ({count}){when}; {memory}."


def console_claims(claims: Sequence[Mapping[str, Any]], run_seeds: Sequence[int] | None = None) -> str:
    """A plain-text claims table for the terminal."""
    rows = [
        (c["id"], fmt_claim_value(c, run_seeds), f"{c['check']}", c["verdict"], c.get("paper") or "")
        for c in claims
    ]
    head = ("claim", "ours", "check", "verdict", "paper")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(4)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=False)) + "  paper"]
    out[0] = "  ".join(h.ljust(w) for h, w in zip(head[:4], widths, strict=False)) + "  paper"
    out.append("-" * (sum(widths) + 8 + 40))
    for r in rows:
        out.append("  ".join(str(x).ljust(w) for x, w in zip(r[:4], widths, strict=False)) + "  " + r[4])
    return "\n".join(out)
