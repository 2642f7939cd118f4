"""Charts drawn on the server as inline SVG: no script, no inline style (the pages' CSP
forbids both), colours from classes in ``static/app.css``.

Each chart is a ``<figure>``: the SVG (``role="img"``, named by its ``<title>`` and
``<desc>``, which says in words what the chart shows) and a ``<details>`` table with every
number, the text alternative. The SVG scales with its ``viewBox`` (drawn for a 360 px
phone: labels stay ~12 px there); bars carry their value as text and series are told
apart by their labels and patterns, never by colour alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Chart", "Segment", "bar_chart", "line_chart", "share_bar"]

WIDTH = 360  # the viewBox width: one user unit is a CSS pixel on a 360 px phone
FONT = 12


@dataclass(frozen=True, slots=True)
class Chart:
    """A rendered chart; Jinja2 inserts it unescaped (``__html__``)."""

    html: str

    def __html__(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of a share bar: its words, its count and its style (a class in app.css:
    ``ok``, ``bad``, ``muted``, ``accent``; ``bad`` is also hatched)."""

    label: str
    value: int
    kind: str = "accent"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _num(n: float) -> str:
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.1f}"


def _figure(chart_id: str, title: str, desc: str, width: int, height: int, body: str,
            table_head: Sequence[str], table_rows: Sequence[Sequence[object]], *, extra: str = "") -> Chart:
    t, d = f"{chart_id}-t", f"{chart_id}-d"
    head = "".join(f'<th scope="col" class="num">{_e(h)}</th>' if i else f'<th scope="col">{_e(h)}</th>'
                   for i, h in enumerate(table_head))
    rows = "".join(
        "<tr>" + "".join(
            f'<th scope="row">{_e(c)}</th>' if i == 0 else f'<td class="num">{_e(c)}</td>' for i, c in enumerate(row)
        ) + "</tr>"
        for row in table_rows
    )
    svg = (
        f'<svg class="chart-svg" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{t} {d}" '
        f'focusable="false" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{t}">{_e(title)}</title><desc id="{d}">{_e(desc)}</desc>{body}</svg>'
    )
    return Chart(
        f'<figure class="chart" id="{_e(chart_id)}"><figcaption class="chart-title">{_e(title)}</figcaption>'
        f'{svg}{extra}<details class="chart-data"><summary>The numbers<span class="sr-only"> of the chart '
        f'{_e(title)}</span></summary>'
        f'<div class="table-wrap"><table><caption class="sr-only">{_e(title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></details></figure>"
    )


def _nice_max(value: float) -> float:
    """The smallest 1-2-5 step at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def bar_chart(chart_id: str, *, title: str, labels: Sequence[str], values: Sequence[int], unit: str,
              kind: str = "accent", label_every: int = 1, desc: str | None = None) -> Chart:
    """Vertical bars, one per label, each with its value written above it (values of
    bars too narrow for a number are in the table). ``label_every`` shows every n-th
    label under the axis (hourly charts)."""
    n = len(values)
    height, top, bottom, left, right = 180, 18, 24, 8, 8
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    peak = max(values, default=0)
    scale_max = _nice_max(peak)
    slot = plot_w / max(n, 1)
    bar_w = max(slot * 0.7, 1.0)
    show_values = slot >= 26
    parts = [f'<line class="chart-axis" x1="{left}" y1="{top + plot_h}" x2="{WIDTH - right}" y2="{top + plot_h}"/>']
    for i, value in enumerate(values):
        x = left + i * slot + (slot - bar_w) / 2
        h = plot_h * value / scale_max
        y = top + plot_h - h
        parts.append(f'<rect class="chart-bar chart-{_e(kind)}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                     f'height="{h:.1f}"><title>{_e(labels[i])}: {_num(value)} {_e(unit)}</title></rect>')
        cx = x + bar_w / 2
        if show_values:
            parts.append(f'<text class="chart-value" x="{cx:.1f}" y="{y - 4:.1f}" text-anchor="middle">{_num(value)}</text>')
        if i % max(label_every, 1) == 0:
            parts.append(f'<text class="chart-label" x="{cx:.1f}" y="{height - 8}" text-anchor="middle">{_e(labels[i])}</text>')
    if desc is None:
        if n and peak:
            best = labels[list(values).index(peak)]
            desc = f"{_num(sum(values))} {unit} in all over {n} bars; the most, {_num(peak)}, at {best}."
        else:
            desc = f"No {unit} in this period."
    return _figure(chart_id, title, desc, WIDTH, height, "".join(parts),
                   ("When", unit.capitalize()), [(lab, _num(v)) for lab, v in zip(labels, values, strict=True)])


def share_bar(chart_id: str, *, title: str, segments: Sequence[Segment]) -> Chart:
    """One horizontal bar split into shares, with a legend in words (label, count, percent)."""
    total = sum(s.value for s in segments)
    height, bar_h, left = 44, 28, 0
    parts: list[str] = [
        '<defs><pattern id="' + _e(chart_id) + '-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line class="chart-hatch" x1="0" y1="0" x2="0" y2="6"/></pattern></defs>'
    ]
    x = float(left)
    legend = []
    rows = []
    for s in segments:
        share = s.value / total if total else 0.0
        w = WIDTH * share
        percent = f"{100 * share:.0f}%"
        if w > 0:
            parts.append(f'<rect class="chart-bar chart-{_e(s.kind)}" x="{x:.1f}" y="8" width="{w:.1f}" '
                         f'height="{bar_h}"><title>{_e(s.label)}: {_num(s.value)} ({percent})</title></rect>')
            if s.kind == "bad":  # hatched too: failures are told by more than their colour
                parts.append(f'<rect fill="url(#{_e(chart_id)}-hatch)" x="{x:.1f}" y="8" width="{w:.1f}" '
                             f'height="{bar_h}" aria-hidden="true"/>')
            if w >= 40:
                parts.append(f'<text class="chart-on-bar" x="{x + w / 2:.1f}" y="{8 + bar_h / 2 + 4:.1f}" '
                             f'text-anchor="middle">{percent}</text>')
        x += w
        legend.append(f'<li><span class="swatch chart-{_e(s.kind)}" aria-hidden="true"></span>'
                      f"{_e(s.label)}: {_num(s.value)} ({percent})</li>")
        rows.append((s.label, _num(s.value), percent))
    if not total:
        parts.append(f'<rect class="chart-empty" x="0" y="8" width="{WIDTH}" height="{bar_h}"/>')
    desc = ("; ".join(f"{r[0]} {r[1]} ({r[2]})" for r in rows) + f", of {_num(total)}.") if total else "Nothing yet."
    return _figure(chart_id, title, desc, WIDTH, height, "".join(parts), ("Outcome", "Messages", "Share"), rows,
                   extra=f'<ul class="chart-legend" aria-hidden="true">{"".join(legend)}</ul>')


def line_chart(chart_id: str, *, title: str, points: Sequence[tuple[float, float | None]], start: float, end: float,
               y_min: float, y_max: float, unit: str, x_ticks: Sequence[tuple[float, str]],
               table: Sequence[Sequence[object]], table_head: Sequence[str], desc: str) -> Chart:
    """A line over time from ``start`` to ``end`` (a None value breaks the line: no reading);
    y gridlines at the bottom, middle and top with their values; ``table`` is the text
    alternative (e.g. per hour)."""
    height, top, bottom, left, right = 170, 10, 24, 40, 8
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    span = max(end - start, 1.0)

    def px(t: float) -> float:
        return left + plot_w * (min(max(t, start), end) - start) / span

    def py(v: float) -> float:
        v = min(max(v, y_min), y_max)
        return top + plot_h * (y_max - v) / (y_max - y_min)

    parts = []
    for v in (y_min, (y_min + y_max) / 2, y_max):
        y = py(v)
        parts.append(f'<line class="chart-grid" x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" y2="{y:.1f}"/>')
        parts.append(f'<text class="chart-label" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_num(v)}</text>')
    for t, label in x_ticks:
        parts.append(f'<text class="chart-label" x="{px(t):.1f}" y="{height - 8}" text-anchor="middle">{_e(label)}</text>')
    runs: list[list[tuple[float, float]]] = [[]]
    for t, v in points:
        if v is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((px(t), py(v)))
    for run in runs:
        if len(run) == 1:
            parts.append(f'<circle class="chart-dot" cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="2.5"/>')
        elif run:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            parts.append(f'<polyline class="chart-line" points="{path}"/>')
    if not any(runs):
        parts.append(f'<text class="chart-label" x="{WIDTH / 2}" y="{top + plot_h / 2}" text-anchor="middle">'
                     f"no {_e(unit)} readings yet</text>")
    return _figure(chart_id, title, desc, WIDTH, height, "".join(parts), table_head, table)
