"""The campaign's HTML report: one self-contained page (inline CSS and SVG, no scripts).

Scorecard, metrics, equity and drawdown charts drawn as inline SVG from the integer
equity samples, the chaos timeline as a table, and the incidents, each linked to its
post-mortem file (relative links, so the out dir can be moved or archived whole).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from predator.campaign.campaign import CampaignResult

__all__ = ["render_html", "svg_chart"]

WIDTH, HEIGHT, PAD = 860, 220, 36
COLOURS = ("#1f6feb", "#d2691e", "#2e8b57", "#8a2be2", "#b22222")
STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{margin-bottom:4px} .PASS{color:#17803d} .FAIL{color:#c62828} .SKIP{color:#777}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4} code{font-size:12px} svg{background:#fcfcfc;border:1px solid #eee}
"""


def _iso(ts: int | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def svg_chart(ts: list[int], series: dict[str, list[float]], title: str, unit: str = "") -> str:
    """A line chart of ``series`` over ``ts`` as an inline ``<svg>`` element."""
    if len(ts) < 2 or not series:
        return f"<p>{escape(title)}: not enough samples</p>"
    values = [v for line in series.values() for v in line]
    low, high = min(values), max(values)
    if high == low:
        high = low + 1
    t0, t1 = ts[0], ts[-1]
    width, height = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def x(t: int) -> float:
        return PAD + (t - t0) / (t1 - t0) * width

    def y(v: float) -> float:
        return PAD + (high - v) / (high - low) * height

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<text x="4" y="{PAD + 4}" font-size="10">{high:,.2f}{unit}</text>',
        f'<text x="4" y="{PAD + height}" font-size="10">{low:,.2f}{unit}</text>',
        f'<text x="{PAD}" y="{HEIGHT - 6}" font-size="10">{_iso(t0)[:10]}</text>',
        f'<text x="{WIDTH - PAD - 60}" y="{HEIGHT - 6}" font-size="10">{_iso(t1)[:10]}</text>',
        f'<line x1="{PAD}" y1="{PAD + height}" x2="{PAD + width}" y2="{PAD + height}" '
        'stroke="#bbb"/>',
    ]
    for i, (name, line) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(ts, line, strict=False))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.3" points="{points}"/>'
        )
        parts.append(
            f'<text x="{PAD + 10 + 150 * i}" y="{PAD - 6}" font-size="11" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _drawdown(line: list[float]) -> list[float]:
    peak = None
    out: list[float] = []
    for value in line:
        peak = value if peak is None or value > peak else peak
        out.append(0.0 if not peak else (value - peak) / peak * 100)
    return out


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _metric_rows(metrics: dict[str, Any]) -> list[list[str]]:
    return [[f"<code>{escape(key)}</code>", escape(str(value))] for key, value in metrics.items()]


def render_html(result: CampaignResult, out_dir: Path) -> str:
    """The whole report page for ``result`` (links relative to ``out_dir``)."""
    config = result.config
    scale = 10 ** _money_precision(result)
    equity = result.equity
    ts = equity.get("ts", [])
    lines = {k: [v / scale for v in vs] for k, vs in equity.get("equity", {}).items() if vs}
    gates = _table(
        ["gate", "status", "detail", "evidence"],
        [
            [
                escape(g.name),
                f'<b class="{g.status}">{g.status}</b>',
                escape(g.detail),
                "<br>".join(escape(e) for e in g.evidence),
            ]
            for g in result.gates
        ],
    )
    metrics = _table(["metric", "value"], _metric_rows(result.metrics))
    timeline = _table(
        ["time", "event", "fault / scenario", "kind", "target", "until"],
        [
            [
                _iso(e.get("ts")),
                escape(e["type"]),
                escape(str(e.get("fault_id") or e.get("scenario") or "")),
                escape(str(e.get("kind") or e.get("group") or "")),
                escape(str(e.get("target", ""))),
                _iso(e.get("until_ts")),
            ]
            for e in sorted(result.chaos_log, key=lambda e: e.get("ts", 0))
        ],
    )
    incidents = _table(
        ["seq", "time", "incident", "scope", "reason", "post-mortem"],
        [
            [
                str(i["seq"]),
                escape(i["time"] or ""),
                escape(i["type"]),
                escape(i["scope"]),
                escape(i["reason"]),
                _link(i.get("postmortem"), out_dir),
            ]
            for i in result.incidents
        ],
    )
    drawdowns = {name: _drawdown(line) for name, line in lines.items()}
    failures = "".join(f"<li>{escape(g.name)}: {escape(g.detail)}</li>" for g in result.failures())
    reproduce = escape(config.command())
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Predator campaign seed {config.seed}: {result.verdict}</title>"
        f"<style>{STYLE}</style></head><body>"
        f'<h1>Campaign <span class="{result.verdict}">{result.verdict}</span></h1>'
        f"<p>{config.days} simulated days, chaos <b>{escape(config.chaos)}</b>, seed "
        f"<b>{config.seed}</b>; journal digest <code>{result.journal_digest}</code> "
        f"({result.journal_events} events)</p>"
        + (f"<p><b>Fatal:</b> {escape(result.fatal)}</p>" if result.fatal else "")
        + (f"<ul>{failures}</ul>" if failures else "")
        + f"<p>Reproduce: <code>{reproduce}</code></p>"
        "<h2>Scorecard</h2>" + gates + "<h2>Equity</h2>" + svg_chart(ts, lines, "equity", "")
        + svg_chart(ts, drawdowns, "drawdown from peak", " %")
        + "<h2>Metrics</h2>" + metrics
        + f"<h2>Chaos timeline ({len(result.chaos_log)} events)</h2>" + timeline
        + f"<h2>Incidents ({len(result.incidents)})</h2>" + incidents
        + "</body></html>\n"
    )  # fmt: skip


def _link(path: str | None, out_dir: Path) -> str:
    if not path:
        return ""
    relative = os.path.relpath(path, out_dir)
    return f'<a href="{escape(relative)}">{escape(Path(path).name)}</a>'


def _money_precision(result: CampaignResult) -> int:
    return int(result.equity.get("money_precision", 0) or 0)
