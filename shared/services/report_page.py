"""The operator report as one self-contained HTML page (README.md#operator-report), pure.

Rendered with Jinja2 (autoescape on: every name, address and error from the store is escaped)
from `templates/report.html.j2`. The page has inline CSS and one inline SVG and fetches nothing:
no script, font, image or style sheet from the network.

The chart is a small SVG bar chart of our own rather than a charting library: the SVG charting
library that fits (pygal) adds a dependency and, by default, references its tooltip script
from the network; twelve bars with labels are a few lines here, and stay accessible (`role=img`,
`<title>`, `<desc>` listing every number, the counts also written on the bars and in a table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.domain.report import Report, WeekCount

CHART_WIDTH = 720
CHART_HEIGHT = 240
_PLOT_TOP = 24
_PLOT_BOTTOM = 200  # baseline; week labels below it
_PLOT_LEFT = 40
_BAR_GAP = 8


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    label: str  # the week's Monday, "Nov 23"
    week_start: str  # ISO date
    value: int


def chart_bars(weekly: tuple[WeekCount, ...]) -> list[Bar]:
    """The bars of the weekly chart, scaled to the largest week (an empty tenant: flat bars)."""
    if not weekly:
        return []
    top = max(w.interactions for w in weekly) or 1
    slot = (CHART_WIDTH - _PLOT_LEFT) // len(weekly)
    span = _PLOT_BOTTOM - _PLOT_TOP
    bars = []
    for index, week in enumerate(weekly):
        height = round(span * week.interactions / top)
        bars.append(
            Bar(
                x=_PLOT_LEFT + index * slot + _BAR_GAP // 2,
                y=_PLOT_BOTTOM - height,
                width=slot - _BAR_GAP,
                height=height,
                label=week.start.strftime("%b %d"),
                week_start=week.start.date().isoformat(),
                value=week.interactions,
            )
        )
    return bars


def _utc(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_report_html(report: Report) -> str:
    """The whole page. Raises nothing for any report (missing values are shown as such)."""
    import jinja2  # here, not at import time: only `calsync report --html` renders

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("shared.services", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["utc"] = _utc
    template = environment.get_template("report.html.j2")
    bars = chart_bars(report.weekly)
    description = "; ".join(f"week of {b.week_start}: {b.value}" for b in bars)
    return template.render(
        report=report,
        bars=bars,
        chart_description=description,
        chart_width=CHART_WIDTH,
        chart_height=CHART_HEIGHT,
        baseline=_PLOT_BOTTOM,
        plot_left=_PLOT_LEFT,
        total_weekly=sum(w.interactions for w in report.weekly),
    )
