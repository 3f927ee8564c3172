"""One self-contained HTML page for a run (`run_page`) or over many runs (`metrics_page`).

No scripts, fonts, images or styles from anywhere else (a Content-Security-Policy meta tag forbids them
too); inline CSS and SVG only, so the page reads the same offline, from a CI artifact or an e-mail. Every
text that comes from a manifest, a config or a log is escaped here (and was cleaned of ANSI escapes and
control characters in `collect`), so it renders as text. A status always has an icon and a word, never
colour alone.

Longer than 400 lines because it is two self-contained pages of inline HTML and CSS (no templates
are bundled): the markup is long, the logic is small.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from html import escape
from typing import Any

from codex_orchestrator.clock import parse_iso
from codex_orchestrator.output import clean_text
from codex_orchestrator.reports.collect import (
    RunReport,
    StageReport,
    duration_text,
    guardrail_line,
    provenance_line,
    review_line,
    status_label,
)

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

COLOURS = {
    "succeeded": "#1a7f37",
    "failed": "#cf222e",
    "cancelled": "#6e7781",
    "skipped": "#9a6700",
    "pending": "#8c959f",
    "not_run": "#8c959f",
    "running": "#0969da",
    "queued": "#8c959f",
    "in_progress": "#0969da",
}

CSS = """
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 color:#1f2328;background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px 28px 40px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid #d0d7de}
code,pre,.mono{font-family:ui-monospace,"SFMono-Regular","DejaVu Sans Mono",Menlo,Consolas,monospace;
 font-size:13px}
.sub{color:#59636e;margin:0 0 14px}
.badge{display:inline-block;padding:2px 12px;border-radius:999px;font-weight:600;color:#fff;font-size:14px;
 vertical-align:middle;margin-left:8px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(240px,1fr));gap:12px}
.card{background:#fff;border:1px solid #d0d7de;border-left-width:5px;border-radius:8px;padding:10px 14px}
.card h3{margin:0 0 4px;font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#59636e}
.card p{margin:0;overflow-wrap:anywhere}
.big{font-size:26px;font-weight:650}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d0d7de;border-radius:8px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#59636e;background:#f6f8fa}
td.num,th.num{text-align:right;white-space:nowrap}
td.cmd{max-width:360px;overflow-wrap:anywhere}
.st{font-weight:600;white-space:nowrap}
figure{margin:0;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 14px}
figcaption{color:#59636e;font-size:13px;margin-top:4px}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
details{background:#fff;border:1px solid #d0d7de;border-radius:8px;margin:10px 0}
details>summary{cursor:pointer;padding:8px 12px;font-weight:600}
pre{margin:0;padding:12px 14px;background:#161b22;color:#e6edf3;border-radius:0 0 8px 8px;overflow:auto;
 white-space:pre-wrap;overflow-wrap:anywhere;max-height:480px}
footer{margin-top:32px;color:#59636e;font-size:12px}
"""


def _e(value: object) -> str:
    """Escaped text: cleaned of terminal escapes and control characters, then HTML-escaped."""
    return escape(clean_text(str(value)), quote=True)


def _colour(status: str) -> str:
    return COLOURS.get(status, "#8c959f")


def _status_span(status: str, *, allowed: bool = False) -> str:
    colour = COLOURS["skipped"] if allowed else _colour(status)
    return f'<span class="st" style="color:{colour}">{_e(status_label(status, allowed=allowed))}</span>'


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )


def _card(title: str, text: str, colour: str) -> str:
    return f'<div class="card" style="border-left-color:{colour}"><h3>{_e(title)}</h3><p>{_e(text)}</p></div>'


# -- the stage timeline --------------------------------------------------------------------------------
def _ticks(total: float) -> list[float]:
    """About five round tick values from 0 to `total` seconds."""
    if total <= 0:
        return [0.0]
    raw = total / 5
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1.0
    step = next((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), 10 * magnitude)
    if raw < 1:
        step = next(s for s in (0.1, 0.2, 0.25, 0.5, 1.0) if s >= raw)
    ticks, t = [], 0.0
    while t <= total + 1e-9:
        ticks.append(round(t, 3))
        t += step
    return ticks


def timeline_svg(report: RunReport) -> str:
    """Every stage as a bar placed by its start and sized by its duration, to scale with the run."""
    width, label_w, right_w, row_h, top = 1000, 190, 150, 30, 30
    plot_w = width - label_w - right_w
    ends = [
        (s.offset_seconds or 0.0) + (s.duration_seconds or 0.0)
        for s in report.stages
        if s.duration_seconds is not None
    ]
    total = max([report.duration_seconds or 0.0, *ends]) or 1.0
    height = top + row_h * max(1, len(report.stages)) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="stage timeline, {len(report.stages)} stages over '
        f'{_e(duration_text(report.duration_seconds))}">'
    ]
    for tick in _ticks(total):
        x = label_w + plot_w * tick / total
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 6}" stroke="#eaeef2"/>'
            f'<text x="{x:.1f}" y="{top - 12}" font-size="11" fill="#59636e" text-anchor="middle">'
            f"{_e(duration_text(tick) if tick else '0s')}</text>"
        )
    for row, s in enumerate(report.stages):
        y = top + row * row_h
        colour = COLOURS["skipped"] if s.failure_allowed else _colour(s.status)
        parts.append(
            f'<text x="{label_w - 10}" y="{y + 19}" font-size="13" text-anchor="end" fill="#1f2328">'
            f"{_e(s.id[:26])}</text>"
        )
        note = status_label(s.status, allowed=s.failure_allowed)
        if s.duration_seconds is not None and s.offset_seconds is not None:
            x = label_w + plot_w * s.offset_seconds / total
            w = max(3.0, plot_w * s.duration_seconds / total)
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 5}" width="{w:.1f}" height="{row_h - 10}" rx="4" '
                f'fill="{colour}"><title>{_e(s.id)}: {_e(note)}, '
                f"{_e(duration_text(s.duration_seconds))}</title></rect>"
            )
            note += f"  {duration_text(s.duration_seconds)}"
            text_x = min(x + w + 8, label_w + plot_w + 8)
        else:
            parts.append(
                f'<line x1="{label_w}" y1="{y + 15}" x2="{label_w + plot_w}" y2="{y + 15}" '
                f'stroke="{colour}" stroke-dasharray="3 5"/>'
            )
            text_x = label_w + plot_w + 8
        parts.append(
            f'<text x="{text_x:.1f}" y="{y + 19}" font-size="12" fill="{colour}" font-weight="600">'
            f"{_e(note)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


# -- the run page -------------------------------------------------------------------------------------
def _evidence_colour(kind: str, report: RunReport) -> str:
    if kind == "guardrails":
        return {
            "passed": COLOURS["succeeded"],
            "failed": COLOURS["failed"],
            "missing": COLOURS["failed"],
        }.get(str(report.guardrails.get("status")), COLOURS["pending"])
    if kind == "review" and report.review:
        verdict = report.review.get("verdict")
        return {"approve": COLOURS["succeeded"], "request_changes": COLOURS["failed"]}.get(
            str(verdict), COLOURS["pending"]
        )
    if kind == "provenance" and report.provenance:
        return COLOURS["skipped"] if report.provenance.get("dirty") else COLOURS["running"]
    return COLOURS["pending"]


def _icon_for(kind: str, report: RunReport) -> str:
    colour = _evidence_colour(kind, report)
    return {COLOURS["succeeded"]: "✔ ", COLOURS["failed"]: "✖ ", COLOURS["skipped"]: "! "}.get(colour, "")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _stage_rows(stages: Iterable[StageReport]) -> str:
    rows = []
    for s in stages:
        rows.append(
            "<tr>"
            f'<td class="num">{s.index}</td><td><code>{_e(s.id)}</code><br>'
            f'<span class="sub">{_e(s.title) if s.title != s.id else ""}</span></td>'
            f"<td>{_status_span(s.status, allowed=s.failure_allowed)}</td>"
            f'<td class="num">{"" if s.exit_code is None else s.exit_code}'
            f"{_e(' ' + s.signal) if s.signal else ''}</td>"
            f'<td class="num">{_e(duration_text(s.duration_seconds))}</td>'
            f'<td class="cmd"><code>{_e(_clip(s.command, 240))}</code></td>'
            f"<td>{_e(s.summary or '')}</td>"
            "</tr>"
        )
    return "\n".join(rows)


def run_page(report: RunReport, *, generated_at: str | None = None) -> str:
    """The HTML report of one run."""
    colour = _colour(report.status)
    failed = [s for s in report.stages if s.status in ("failed", "cancelled")]
    body = [
        f"<h1>{_e(report.pipeline_title)}"
        f'<span class="badge" style="background:{colour}">{_e(status_label(report.status))}</span></h1>',
        f'<p class="sub">pipeline <code>{_e(report.pipeline_id)}</code>'
        + f" · run <code>{_e(report.run_id)}</code> · task <code>{_e(report.task_id)}</code>"
        + f" · started {_e(report.started_at or '-')}"
        + f" · took {_e(duration_text(report.duration_seconds))}"
        + (f" · resumed {report.resumed} time(s)" if report.resumed else "")
        + "</p>",
    ]
    if report.summary or report.status_detail:
        body.append(f"<p><strong>{_e(report.summary or report.status_detail)}</strong></p>")
    body.append('<div class="cards">')
    for kind, title, text in (
        ("provenance", "Provenance", provenance_line(report)),
        ("guardrails", "Guardrails", guardrail_line(report)),
        ("review", "Review", review_line(report)),
    ):
        body.append(_card(title, _icon_for(kind, report) + text, _evidence_colour(kind, report)))
    body.append("</div>")
    body.append("<h2>Timeline</h2>")
    body.append(
        f"<figure>{timeline_svg(report)}<figcaption>Bars are drawn to scale: each starts when its stage "
        "started and is as long as the stage took. A dashed line is a stage that did not run.</figcaption>"
        "</figure>"
    )
    body.append("<h2>Stages</h2>")
    body.append(
        '<table><thead><tr><th class="num">#</th><th>Stage</th><th>Status</th><th class="num">Exit</th>'
        '<th class="num">Time</th><th>Command</th><th>Note</th></tr></thead><tbody>'
    )
    body.append(_stage_rows(report.stages))
    body.append("</tbody></table>")
    if failed:
        body.append("<h2>Output of failed stages</h2>")
        for s in failed:
            cut = " (last part)" if s.tail_truncated else ""
            text = s.tail if s.tail else "(no output was recorded)"
            label = status_label(s.status, allowed=s.failure_allowed)
            where = "".join(
                f"<li><code>{_e(x.path)}:{x.line}</code> {_e(x.message)}</li>" for x in s.locations
            )
            where = f"<ul>{where}</ul>" if where else ""
            body.append(
                f"<details open><summary>{_e(label)} · <code>{_e(s.id)}</code>{cut} — "
                f"{_e(s.message())}</summary>{where}<pre>{_e(text)}</pre></details>"
            )
    foot = f"manifest {_e(report.manifest_path)}"
    if report.tool_version:
        foot += f" · codex-orchestrator {_e(report.tool_version)}"
    if generated_at:
        foot += f" · report generated {_e(generated_at)}"
    body.append(f"<footer>{foot}</footer>")
    return _page(f"{report.pipeline_id} {report.status} · {report.run_id}", "\n".join(body))


# -- the metrics page ---------------------------------------------------------------------------------
def _when(entry: dict[str, Any]) -> datetime | None:
    stamp = entry.get("completed_at") or entry.get("started_at")
    if not isinstance(stamp, str):
        return None
    try:
        return parse_iso(stamp)
    except ValueError:
        return None


_GRAINS = (("day", "%Y-%m-%d"), ("hour", "%Y-%m-%d %H:00"), ("minute", "%Y-%m-%d %H:%M"))


def buckets(entries: list[dict[str, Any]], *, most: int = 60) -> tuple[str, list[dict[str, Any]]]:
    """Runs grouped by day (or hour, or minute when they all fall in one day or hour): per group the
    number of runs, the success rate and the p95 duration. Returns (grain, groups oldest first)."""
    from codex_orchestrator.runs.metrics import _percentile

    dated = sorted(((w, e) for e in entries if (w := _when(e)) is not None), key=lambda pair: pair[0])
    chosen: tuple[str, dict[str, list[dict[str, Any]]]] = ("day", {})
    for grain, fmt in _GRAINS if dated else ():
        groups: dict[str, list[dict[str, Any]]] = {}
        for when, entry in dated:
            groups.setdefault(when.strftime(fmt), []).append(entry)
        if len(groups) > most and chosen[1]:
            break
        chosen = (grain, groups)
        if len(groups) >= 2:
            break
    out = []
    for key, items in chosen[1].items():
        durations = [
            float(e["duration_seconds"]) for e in items if isinstance(e.get("duration_seconds"), int | float)
        ]
        ok = sum(1 for e in items if e.get("status") == "succeeded")
        out.append(
            {
                "bucket": key,
                "runs": len(items),
                "succeeded": ok,
                "success_rate": ok / len(items),
                "p95_seconds": _percentile(durations, 95),
            }
        )
    return chosen[0], out


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 4, 5, 8 x 10^k (so quarter ticks are round too) at or above `value`."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 2, 4, 5, 8, 10) if m * magnitude >= value - 1e-12)


def line_chart(
    points: list[tuple[str, float | None]], *, title: str, unit: str, colour: str, y_max: float | None = None
) -> str:
    """A line chart of `points` (label, value) with labelled axes; a missing value leaves a gap."""
    width, height, left, right, top, bottom = 1000, 260, 70, 20, 30, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, v in points if v is not None]
    top_value = y_max if y_max is not None else _nice_ceiling(max(values) * 1.05 if values else 0.0)

    def fmt(v: float) -> str:
        return f"{v * 100:.0f}%" if unit == "%" else duration_text(v)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{_e(title)}">',
        f'<text x="{left}" y="18" font-size="14" font-weight="600" fill="#1f2328">{_e(title)}</text>',
    ]
    for i in range(5):
        grid_value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#eaeef2"/>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#59636e">'
            f"{_e(fmt(grid_value))}</text>"
        )
    n = len(points)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (plot_w * (i + 0.5) / n if n else 0)
        return x, top + plot_h - plot_h * min(v, top_value) / top_value

    segment: list[str] = []
    paths = []
    for i, (_, value) in enumerate(points):
        if value is None:
            if segment:
                paths.append(segment)
            segment = []
            continue
        x, y = xy(i, value)
        segment.append(f"{x:.1f},{y:.1f}")
    if segment:
        paths.append(segment)
    for seg in paths:
        parts.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
    step = max(1, n // 8)
    for i, (label, point) in enumerate(points):
        x = left + plot_w * (i + 0.5) / max(1, n)
        if point is not None:
            _, y = xy(i, point)
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"><title>{_e(label)}: '
                f"{_e(fmt(point))}</title></circle>"
            )
        if i % step == 0 or i == n - 1:
            parts.append(
                f'<text x="{x:.1f}" y="{height - bottom + 18}" font-size="11" text-anchor="middle" '
                f'fill="#59636e">{_e(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def metrics_page(
    summary: dict[str, Any], entries: list[dict[str, Any]], *, generated_at: str | None = None
) -> str:
    """The HTML page over many runs: the `metrics summarize` figures, success rate and p95 duration over
    time, and the runs per pipeline."""

    def pct(v: object) -> str:
        return "n/a" if not isinstance(v, int | float) else f"{v * 100:.1f}%"

    grain, groups = buckets(entries)
    title = "Run metrics" + (f" · task {summary['task_id']}" if summary.get("task_id") else "")
    ready = summary.get("reviewer_ready")
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{summary.get("runs", 0)} finished runs from {len(summary.get("roots") or [])} runs '
        f"root(s), grouped by {grain}</p>",
        '<div class="cards">',
        _card("Success rate", pct(summary.get("success_rate")), COLOURS["succeeded"]),
        _card("p95 duration", duration_text(summary.get("duration_p95_seconds")), COLOURS["running"]),
        _card("Guardrail coverage", pct(summary.get("guardrail_coverage")), COLOURS["skipped"]),
        _card(
            "Reviewer readiness",
            ("✔ " if ready else "✖ ")
            + pct(summary.get("reviewer_readiness"))
            + (" (ready)" if ready else " (below 95%)"),
            COLOURS["succeeded"] if ready else COLOURS["failed"],
        ),
        "</div>",
        "<h2>Over time</h2>",
    ]
    if groups:
        body.append(
            "<figure>"
            + line_chart(
                [(g["bucket"], g["success_rate"]) for g in groups],
                title="Success rate",
                unit="%",
                colour=COLOURS["succeeded"],
                y_max=1.0,
            )
            + "</figure><br><figure>"
            + line_chart(
                [(g["bucket"], g["p95_seconds"]) for g in groups],
                title="p95 run duration",
                unit="s",
                colour=COLOURS["running"],
            )
            + "</figure>"
        )
        rows = "".join(
            f'<tr><td>{_e(g["bucket"])}</td><td class="num">{g["runs"]}</td>'
            f'<td class="num">{g["succeeded"]}</td><td class="num">{pct(g["success_rate"])}</td>'
            f'<td class="num">{_e(duration_text(g["p95_seconds"]))}</td></tr>'
            for g in groups
        )
        body.append(
            f'<h2>By {_e(grain)}</h2><table><thead><tr><th>{_e(grain.title())}</th><th class="num">Runs</th>'
            '<th class="num">Succeeded</th><th class="num">Success rate</th><th class="num">p95 duration</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )
    else:
        body.append("<p>No finished runs recorded yet.</p>")
    by_pipeline = summary.get("by_pipeline") or {}
    if by_pipeline:
        rows = "".join(
            f'<tr><td><code>{_e(pid)}</code></td><td class="num">{v.get("runs", 0)}</td>'
            f'<td class="num">{v.get("succeeded", 0)}</td>'
            f'<td class="num">{pct(v["succeeded"] / v["runs"] if v.get("runs") else None)}</td></tr>'
            for pid, v in sorted(by_pipeline.items())
        )
        body.append(
            '<h2>By pipeline</h2><table><thead><tr><th>Pipeline</th><th class="num">Runs</th>'
            f'<th class="num">Succeeded</th><th class="num">Success rate</th></tr></thead><tbody>{rows}'
            "</tbody></table>"
        )
    foot = "sources: " + _e(", ".join(summary.get("roots") or [])) if summary.get("roots") else ""
    if generated_at:
        foot += f" · generated {_e(generated_at)}"
    body.append(f"<footer>{foot}</footer>")
    return _page(title, "\n".join(body))
