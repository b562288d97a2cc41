"""The Reports page's charts, drawn on the server as SVG with matplotlib (no
JavaScript, no CDN): each reads the same report rows as its table and CSV."""

import io
from datetime import timedelta

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display on a server; set before anything draws

from matplotlib import dates as mdates  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from chatbot.analytics import reports  # noqa: E402
from chatbot.analytics.models import COUNTED, Outcome  # noqa: E402

COLOURS = {
    Outcome.RESOLVED_BY_BOT: "#10b981",
    Outcome.HANDED_OFF: "#3b82f6",
    Outcome.ABANDONED: "#f59e0b",
    Outcome.UNANSWERED: "#ef4444",
}
matplotlib.rcParams.update(
    {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}
)


def _svg(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg")
    return buffer.getvalue()


def _figure(width: float, height: float, *, left: float = 0.1, bottom: float = 0.2, top: float = 0.9) -> tuple:
    # Fixed margins: a tight bounding box would draw every chart twice.
    fig = Figure(figsize=(width, height))
    ax = fig.subplots()
    fig.subplots_adjust(left=left, right=0.97, bottom=bottom, top=top)
    return fig, ax


def _empty(ax, period: reports.Period) -> None:
    ax.text(0.5, 0.5, "No final conversations in this range", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def resolution_rate(period: reports.Period) -> bytes:
    fig, ax = _figure(7.5, 2.8)
    rows = reports.resolution_by_day(period)
    if not rows:
        _empty(ax, period)
        return _svg(fig)
    by_version: dict = {}
    for r in rows:
        by_version.setdefault(r["model_version"], ([], []))
        by_version[r["model_version"]][0].append(r["day"])
        by_version[r["model_version"]][1].append(100 * (r["resolution_rate"] or 0))
    for version, (days, rates) in by_version.items():
        ax.plot(days, rates, marker="o", markersize=2.5, linewidth=1.5, label=version)
    ax.set_ylim(0, 100)
    ax.set_ylabel("resolved by the bot (%)")
    ax.legend(title="model version", fontsize=8, loc="lower left")
    fig.autofmt_xdate()
    return _svg(fig)


def outcomes_per_day(period: reports.Period) -> bytes:
    fig, ax = _figure(7.5, 2.8, top=0.85)
    rows = reports.outcomes_by_day(period)
    if not any(r["total"] for r in rows):
        _empty(ax, period)
        return _svg(fig)
    # One filled step path per outcome (not a patch per bar): a long range draws as fast as a short one.
    edges = mdates.date2num([r["day"] for r in rows] + [rows[-1]["day"] + timedelta(days=1)])
    bottom = np.zeros(len(rows))
    for outcome in COUNTED:
        values = np.array([r[outcome] for r in rows], dtype=float)
        ax.stairs(bottom + values, edges, baseline=bottom, fill=True, color=COLOURS[outcome], label=outcome.label)
        bottom += values
    ax.xaxis_date()
    ax.set_ylabel("conversations")
    ax.legend(fontsize=8, ncols=4, loc="upper left", bbox_to_anchor=(0, 1.2), frameon=False)
    fig.autofmt_xdate()
    return _svg(fig)


def hour_of_week(period: reports.Period) -> bytes:
    fig, ax = _figure(7.5, 2.6, left=0.07, bottom=0.2)
    rows = reports.hour_of_week(period)
    grid = [[0] * 24 for _ in reports.WEEKDAYS]
    for r in rows:
        grid[reports.WEEKDAYS.index(r["weekday"])][r["hour"]] = r["conversations"]
    image = ax.imshow(grid, aspect="auto", cmap="Blues")
    ax.set_yticks(range(7), reports.WEEKDAYS)
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    ax.set_xlabel(f"hour ({reports.site_zone().key})")
    fig.colorbar(image, ax=ax, label="conversations")
    return _svg(fig)


def csat(period: reports.Period) -> bytes:
    fig, ax = _figure(3.6, 2.6, left=0.2, bottom=0.2)
    rows = reports.csat_distribution(period)
    ax.bar([r["score"] for r in rows], [r["ratings"] for r in rows], color="#6366f1")
    ax.set_xticks(range(1, 6))
    ax.set_xlabel("rating")
    ax.set_ylabel("ratings")
    return _svg(fig)


def _barh(rows: list[dict], label: str, value: str, xlabel: str, colour: str) -> bytes:
    fig, ax = _figure(5.0, 2.8, left=0.45, bottom=0.16, top=0.95)
    if not rows:
        ax.text(0.5, 0.5, "None in this range", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _svg(fig)
    rows = rows[:10][::-1]
    ax.barh([r[label][:40] for r in rows], [r[value] for r in rows], color=colour)
    ax.set_xlabel(xlabel)
    return _svg(fig)


def top_intents(period: reports.Period) -> bytes:
    return _barh(reports.top_intents(period), "intent", "messages", "visitor messages", "#0ea5e9")


def top_fallbacks(period: reports.Period) -> bytes:
    return _barh(reports.top_fallback_messages(period), "text", "fallbacks", "fallback answers", "#ef4444")


CHARTS = {
    "resolution_rate": ("Resolution rate by model version", resolution_rate),
    "outcomes": ("Outcomes per day", outcomes_per_day),
    "hour_of_week": ("Conversations per hour of the week", hour_of_week),
    "csat": ("CSAT distribution", csat),
    "top_intents": ("Top intents", top_intents),
    "top_fallbacks": ("Top fallback messages", top_fallbacks),
}
