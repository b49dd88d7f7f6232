"""The pages' chart geometry: values land where the axes say they are."""

from __future__ import annotations

from leaderboard.charts import interval_chart, line_chart


def test_a_line_chart_puts_dates_on_x_and_values_on_y():
    chart = line_chart(
        [{"label": "Atlas", "points": [("2026-01-01", 0.0, 3), ("2026-01-03", 1.0, 4), ("2026-01-05", 0.5, 1)]}],
        y_max=1.0,
        percent=True,
    )
    left, right, top, bottom = chart["left"], chart["right_edge"], chart["top"], chart["bottom_edge"]
    dots = chart["lines"][0]["dots"]
    assert [d["x"] for d in dots] == [left, (left + right) / 2, right]
    assert [d["y"] for d in dots] == [bottom, top, (top + bottom) / 2]
    assert chart["lines"][0]["points"] == " ".join(f"{d['x']},{d['y']}" for d in dots)
    assert dots[1]["title"] == "Atlas · 2026-01-03: 100% (n=4)"
    assert [t["label"] for t in chart["y_ticks"]] == ["0%", "25%", "50%", "75%", "100%"]


def test_a_line_chart_rounds_its_axis_up_and_centres_a_single_day():
    chart = line_chart([{"label": "Atlas", "points": [("2026-01-01", 180.0, 2)]}], unit=" ms")
    assert chart["y_ticks"][-1]["label"] == "200 ms"
    assert chart["lines"][0]["dots"][0]["x"] == (chart["left"] + chart["right_edge"]) / 2


def test_an_empty_line_chart_says_so():
    assert line_chart([{"label": "Atlas", "points": []}])["empty"] is True


def test_an_interval_chart_spans_each_confidence_interval():
    chart = interval_chart(
        [
            {"label": "Atlas", "score": 0.5, "ci_low": 0.25, "ci_high": 0.75},
            {"label": "Unscored", "score": None, "ci_low": None, "ci_high": None},
        ]
    )
    (row,) = chart["rows"]
    zero, full = chart["ticks"][0]["x"], chart["ticks"][-1]["x"]
    assert row["x"] == (zero + full) / 2
    assert (row["x_low"], row["x_high"]) == (zero + (full - zero) / 4, zero + 3 * (full - zero) / 4)
    assert row["title"] == "Atlas: 50.0% (95% CI 25.0–75.0%)"
