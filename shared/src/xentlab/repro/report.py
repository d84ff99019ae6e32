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


def fmt_claim_value(c: Mapping[str, Any]) -> str:
    if c.get("value") is None:
        return "n/a"
    if c["agg"] == "all":
        return c.get("reason", "")
    if c["agg"] in ("min", "max"):
        return f"{fmt_num(c['value'])} ({c['agg']} of {c['n']} seeds)"
    ci = c.get("ci95")
    spread = f" ± {fmt_num(c.get('std'), 2)}" if c.get("n", 0) > 1 else ""
    ci_txt = f" [{fmt_num(ci[0])}, {fmt_num(ci[1])}]" if ci and c.get("n", 0) > 1 else ""
    return f"{fmt_num(c['value'])}{spread}{ci_txt} (n={c['n']})"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def claims_table(claims: Sequence[Mapping[str, Any]]) -> str:
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
                    fmt_claim_value(c),
                    f"`{c['metric']}` {c['check']}",
                    VERDICT_MARK[c["verdict"]],
                )
            )
            + " |"
        )
    return "\n".join(rows)


def metrics_table(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    rows = ["| metric | mean | std | 95% CI | n | per seed |", "|---|---|---|---|---|---|"]
    for key, m in metrics.items():
        ci = m.get("ci95")
        per = ", ".join(fmt_num(v) for v in m["per_seed"].values())
        rows.append(
            f"| `{key}` | {fmt_num(m['mean'])} | {fmt_num(m['std'], 2)} | "
            f"{f'[{fmt_num(ci[0])}, {fmt_num(ci[1])}]' if ci else 'n/a'} | {m['n']} | {per} |"
        )
    return "\n".join(rows)


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
        f"{held}/{len(result['claims'])} claims hold. {_compute_line(result)}",
        "",
        f"Reproduce: `{result['command']}`",
        "",
        "## Claims",
        "",
        "Verdicts: for a mean over seeds, *holds* when the mean and the whole bootstrap 95% CI satisfy "
        "the check, *fails* when they all violate it, *inconclusive* otherwise; min/max claims are "
        "worst cases over seeds.",
        "",
        claims_table(result["claims"]),
        "",
    ]
    notes = [c for c in result["claims"] if c.get("note")]
    if notes:
        lines += ["Notes:", ""] + [f"- `{c['id']}`: {c['note']}" for c in notes] + [""]
    if figures:
        lines += ["## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in figures] + [""]
    lines += ["## Metrics", "", metrics_table(result["metrics"]), "", "## Configuration", ""]
    for exp, cfg in result["config"].items():
        lines += [f"- `{exp}`: " + ", ".join(f"{k}={v}" for k, v in cfg.items())]
    git = env.get("git", {})
    lines += [
        "",
        "## Environment",
        "",
        f"python {env['python']}, torch {env['torch']}, triton {env.get('triton')}, "
        f"numpy {env.get('numpy')}, {env['package']['name']} {env['package']['version']}, "
        f"xentlab {env.get('xentlab')}; {env['device_name']}; git {(git.get('commit') or 'n/a')[:12]}"
        f"{' (dirty)' if git.get('dirty') else ''}; peak RSS {result['peak_memory_mb']['rss_mb']} MB.",
        "",
    ]
    return "\n".join(lines)


def console_claims(claims: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text claims table for the terminal."""
    rows = [
        (c["id"], fmt_claim_value(c), f"{c['check']}", c["verdict"], c.get("paper") or "") for c in claims
    ]
    head = ("claim", "ours", "check", "verdict", "paper")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(4)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=False)) + "  paper"]
    out[0] = "  ".join(h.ljust(w) for h, w in zip(head[:4], widths, strict=False)) + "  paper"
    out.append("-" * (sum(widths) + 8 + 40))
    for r in rows:
        out.append("  ".join(str(x).ljust(w) for x, w in zip(r[:4], widths, strict=False)) + "  " + r[4])
    return "\n".join(out)
