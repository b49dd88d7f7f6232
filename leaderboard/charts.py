"""Geometry for the pages' inline SVG charts: numbers in, coordinates out; the templates draw them.

No chart library: a line chart (a metric per day per model) and an interval chart (mean score with
its 95% interval per model) are a few dozen coordinates each, computed on the server.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from typing import Any

PALETTE = ("#3358d4", "#d4553a", "#1a7f4b", "#9b51e0", "#c98a00", "#0b8a9e", "#c2185b", "#5d6b82")

Point = tuple[str, float, int]  # (ISO date, value, n)


def _fmt(value: float, *, percent: bool, unit: str) -> str:
    if percent:
        return f"{value * 100:.0f}%"
    if abs(value) >= 100:
        return f"{value:,.0f}{unit}"
    return f"{value:.3g}{unit}"


def _nice_max(value: float) -> float:
    """A round upper bound at or above `value` (1, 2, 2.5, 5 × a power of ten)."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 2.5, 5, 10) if step * magnitude >= value)


def line_chart(
    series: Sequence[dict[str, Any]],
    *,
    y_max: float | None = None,
    percent: bool = False,
    unit: str = "",
    width: int = 640,
    height: int = 220,
) -> dict[str, Any]:
    """One polyline per series over a shared date axis; `series` items are {label, points: [(t, value, n)]}."""
    left, right, top, bottom = 48, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    days = sorted({datetime.date.fromisoformat(t) for s in series for t, _, _ in s["points"]})
    values = [value for s in series for _, value, _ in s["points"]]
    chart: dict[str, Any] = {"width": width, "height": height, "left": left, "top": top, "lines": []}
    chart.update(right_edge=width - right, bottom_edge=height - bottom, empty=not days)
    if not days:
        return chart
    top_value = y_max if y_max is not None else _nice_max(max(values) * 1.05)
    span = (days[-1] - days[0]).days

    def x_of(day: datetime.date) -> float:
        return round(left + (plot_w * (day - days[0]).days / span if span else plot_w / 2), 1)

    def y_of(value: float) -> float:
        return round(top + plot_h * (1 - min(max(value / top_value, 0.0), 1.0)), 1)

    for index, item in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        dots = [
            {
                "x": x_of(datetime.date.fromisoformat(t)),
                "y": y_of(value),
                "title": f"{item['label']} · {t}: {_fmt(value, percent=percent, unit=unit)} (n={n})",
            }
            for t, value, n in item["points"]
        ]
        path = " ".join(f"{dot['x']},{dot['y']}" for dot in dots)
        chart["lines"].append({"label": item["label"], "color": color, "points": path, "dots": dots})
    chart["y_ticks"] = [
        {"y": y_of(top_value * k / 4), "label": _fmt(top_value * k / 4, percent=percent, unit=unit)} for k in range(5)
    ]
    step = max(1, len(days) // 6)
    chart["x_ticks"] = [{"x": x_of(day), "label": day.strftime("%b %d")} for day in days[::step]]
    return chart


def interval_chart(rows: Sequence[dict[str, Any]], *, width: int = 1100, row_height: int = 30) -> dict[str, Any]:
    """A dot for each mean score with a bar over its 95% interval, on a 0–100% axis.

    `rows` items are {label, score, ci_low, ci_high}; rows without a score are skipped.
    """
    left, right, top = 220, 24, 8
    plot_w = width - left - right
    drawn = [row for row in rows if row.get("score") is not None]
    height = top + row_height * len(drawn) + 24

    def x_of(value: float | None) -> float:
        return round(left + plot_w * min(max(value or 0.0, 0.0), 1.0), 1)

    chart_rows = []
    for index, row in enumerate(drawn):
        low = row["ci_low"] if row.get("ci_low") is not None else row["score"]
        high = row["ci_high"] if row.get("ci_high") is not None else row["score"]
        chart_rows.append(
            {
                "label": row["label"],
                "y": top + row_height * index + row_height // 2,
                "x": x_of(row["score"]),
                "x_low": x_of(low),
                "x_high": x_of(high),
                "title": f"{row['label']}: {row['score'] * 100:.1f}% (95% CI {low * 100:.1f}–{high * 100:.1f}%)",
                "color": PALETTE[index % len(PALETTE)],
            }
        )
    ticks = [{"x": x_of(k / 4), "label": f"{k * 25}%"} for k in range(5)]
    return {
        "width": width,
        "height": height,
        "left": left,
        "axis_y": height - 20,
        "rows": chart_rows,
        "ticks": ticks,
        "empty": not chart_rows,
    }
