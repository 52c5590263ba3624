"""Inline SVG line charts rendered on the server for the admin (no JavaScript, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 80, 16, 16, 28


def _label(value: Decimal) -> str:
    if abs(value) >= 1_000_000_000:
        return f"{value / 1_000_000_000:,.2f}B"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:,.2f}M"
    return f"{value:,.2f}"


def _segments(times: list[float], step: timedelta | None) -> list[list[int]]:
    """Indexes of the runs of points without a gap: a gap is more than 1.5 steps between neighbours."""
    if step is None:
        return [list(range(len(times)))]
    limit = step.total_seconds() * 1.5
    runs: list[list[int]] = [[0]]
    for index in range(1, len(times)):
        if times[index] - times[index - 1] > limit:
            runs.append([])
        runs[-1].append(index)
    return runs


def line_chart(
    points: Sequence[tuple[datetime, Decimal]], *, title: str, unit: str = "USD", step: timedelta | None = None
) -> SafeString:
    """An SVG line of ``points`` (oldest first) with min/max and first/last date labels.

    With ``step`` (the expected spacing), a gap in the data stays a gap: the line breaks
    there instead of joining the points either side, and a lone point is a dot.
    """
    if len(points) < 2:
        return mark_safe(f'<p class="help">{escape(title)}: not enough data to draw yet.</p>')  # noqa: S308
    times = [p[0].timestamp() for p in points]
    values = [float(p[1]) for p in points]
    t0, t1 = times[0], times[-1]
    lo, hi = min(values), max(values)
    span_t = (t1 - t0) or 1.0
    span_v = (hi - lo) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def xy(index: int) -> tuple[float, float]:
        return LEFT + (times[index] - t0) / span_t * plot_w, TOP + (hi - values[index]) / span_v * plot_h

    lines = []
    for run in _segments(times, step):
        if len(run) == 1:
            x, y = xy(run[0])
            lines.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="#417690"/>')
        else:
            coords = " ".join("{:.1f},{:.1f}".format(*xy(index)) for index in run)
            lines.append(f'<polyline fill="none" stroke="#417690" stroke-width="1.5" points="{coords}"/>')
    low, high = min(p[1] for p in points), max(p[1] for p in points)
    first, last = points[0][0], points[-1][0]
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" style="max-width:100%;height:auto;font:11px sans-serif">'
        f"<title>{escape(title)}</title>"
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>'
        + "".join(lines)
        + f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{escape(_label(high))}</text>'
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">{escape(_label(low))}</text>'
        f'<text x="{LEFT - 6}" y="{TOP + plot_h / 2:.0f}" text-anchor="end">{escape(unit)}</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 8}">{first:%Y-%m-%d}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{last:%Y-%m-%d}</text>'
        "</svg>"
    )
    return mark_safe(svg)  # noqa: S308 - every interpolated text is escaped or numeric
