"""The reports: plain functions from a date range to rows, read by the Reports
page, its charts and its CSV exports alike, so a CSV always says what the page says.

Outcome figures read the final outcomes (ConversationOutcome) of the conversations
whose first visitor message falls in the range, through one partial index.
"""

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property

import numpy as np
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import connection, transaction
from django.db.models import Aggregate, Count, F, FloatField, Q, Sum
from django.db.models.functions import Coalesce, TruncHour

from chatbot.analytics import rollup
from chatbot.analytics.models import COUNTED, ConversationOutcome, Outcome, OutcomeHour, UnansweredMessage
from chatbot.conversations.models import Message
from chatbot.nlu.models import Feedback

MAX_DAYS = 366
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class PeriodError(ValueError):
    pass


def site_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.SITE_TIME_ZONE)


@dataclass(frozen=True)
class Period:
    """Whole days in the site's time zone, both ends included."""

    start: date
    end: date

    @classmethod
    def parse(cls, start: str | None, end: str | None, today: date | None = None) -> "Period":
        today = today or datetime.now(site_zone()).date()
        try:
            end_day = date.fromisoformat(end) if end else today
            start_day = date.fromisoformat(start) if start else end_day - timedelta(days=29)
        except ValueError:
            raise PeriodError("Dates must look like 2026-01-31.") from None
        if start_day > end_day:
            raise PeriodError("The start date must not be after the end date.")
        if (end_day - start_day).days >= MAX_DAYS:
            raise PeriodError(f"A report covers at most {MAX_DAYS} days.")
        return cls(start_day, end_day)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self) -> tuple[datetime, datetime]:
        zone = site_zone()
        return (
            datetime.combine(self.start, time.min, tzinfo=zone),
            datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone),
        )

    def previous(self) -> "Period":
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def each_day(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


def outcomes_in(period: Period):
    start, end = period.bounds()
    return ConversationOutcome.objects.filter(
        final=True, started_at__gte=start, started_at__lt=end, outcome__in=COUNTED
    )


def _rate(part, whole) -> float | None:
    return round(part / whole, 4) if whole else None


class Percentiles(Aggregate):
    """PostgreSQL's percentile_cont for p50 and p90 at once (one sort): the
    percentiles in the database, not the rows in Python."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = ArrayField(FloatField())


def _numpy_percentiles(values) -> tuple[float | None, float | None]:
    data = np.fromiter((v for v in values if v is not None), dtype=float)
    if not data.size:
        return None, None
    p50, p90 = np.percentile(data, [50, 90])
    return float(p50), float(p90)


def _round(value) -> float | None:
    return round(value, 1) if value is not None else None


def _tally() -> dict:
    return dict.fromkeys(("conversations", *COUNTED, "bot_answers", "fallbacks", "rated", "csat_sum"), 0)


def _add(tally: dict, row: dict) -> None:
    tally["conversations"] += row["n"]
    tally[row["outcome"]] += row["n"]
    tally["bot_answers"] += row["bot_answers"] or 0
    tally["fallbacks"] += row["fallbacks"] or 0
    tally["rated"] += row["rated"]
    tally["csat_sum"] += row["csat_sum"] or 0


def _rates(t: dict) -> dict:
    """A tally of outcomes as the report's counts and rates (docs/analytics.md)."""
    n = t["conversations"]
    handoffs = t[Outcome.HANDED_OFF] + t[Outcome.ABANDONED]
    return {
        "conversations": n,
        "resolved": t[Outcome.RESOLVED_BY_BOT],
        "handed_off": t[Outcome.HANDED_OFF],
        "abandoned": t[Outcome.ABANDONED],
        "unanswered": t[Outcome.UNANSWERED],
        "handoffs": handoffs,
        "bot_answers": t["bot_answers"],
        "fallbacks": t["fallbacks"],
        "rated": t["rated"],
        "csat_mean": round(t["csat_sum"] / t["rated"], 2) if t["rated"] else None,
        "resolution_rate": _rate(t[Outcome.RESOLVED_BY_BOT], n),
        "containment_rate": _rate(n - handoffs, n),
        "handoff_rate": _rate(handoffs, n),
        "fallback_rate": _rate(t["fallbacks"], t["bot_answers"]),
        "csat_response_rate": _rate(t["rated"], n),
    }


_SUMS = {
    "n": Sum("conversations"),
    "bot_answers": Sum("bot_answers"),
    "fallbacks": Sum("fallbacks"),
    "rated": Coalesce(Sum("conversations", filter=Q(csat__isnull=False)), 0),
    "csat_sum": Sum(F("csat") * F("conversations")),
}


def _direct_sums() -> dict:
    return {
        "n": Count("*"),
        "bot_answers": Sum("bot_answers"),
        "fallbacks": Sum("fallbacks"),
        "rated": Count("csat"),
        "csat_sum": Sum("csat"),
    }


def whole_hour_zone(period: Period) -> bool:
    """Whether every UTC hour of the range is a whole hour of the site's time zone
    (not so in India or Newfoundland): then hourly rollup rows add up to its days."""
    start, end = (b.astimezone(UTC) for b in period.bounds())
    if start.minute or end.minute:
        return False
    zone = site_zone()
    hours = int((end - start).total_seconds()) // 3600
    return not any((start + timedelta(hours=i)).astimezone(zone).minute for i in range(hours))


class Snapshot:
    """A period's final outcomes, read once: every outcome table of the page is
    derived from these few grouped queries. On PostgreSQL they read the hourly
    rollup (chatbot/analytics/rollup.py) when the site's hours are whole UTC hours,
    else (and with `direct=True`) the outcomes themselves; both give the same rows."""

    def __init__(self, period: Period, *, direct: bool = False) -> None:
        self.period = period
        self.qs = outcomes_in(period)
        self.from_rollup = not direct and rollup.enabled() and whole_hour_zone(period)
        if self.from_rollup:
            rollup.refresh()  # hours whose outcomes changed since the last run
            start, end = period.bounds()
            self.rollup = OutcomeHour.objects.filter(hour__gte=start, hour__lt=end)

    @cached_property
    def hourly(self) -> list[dict]:
        """Per hour of the site's time zone, model version and outcome."""
        zone = site_zone()
        if self.from_rollup:
            # UTC hours, each one hour of the site's zone (two of them are 01:00 on the
            # night the clocks go back, as in the direct read's truncation).
            result = list(self.rollup.values("hour", "model_version", "outcome").annotate(**_SUMS).order_by())
            for r in result:
                r["at"] = r.pop("hour").astimezone(zone)
            return result
        rows = (
            self.qs.annotate(at=TruncHour("started_at", tzinfo=zone))
            .values("at", "model_version", "outcome")
            .annotate(**_direct_sums())
            .order_by()
        )
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # ~64k index entries for 30 days sort in memory instead of on disk.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL work_mem = '32MB'")
            result = list(rows)
        for r in result:
            r["at"] = r["at"].astimezone(zone)
        return result

    @cached_property
    def breakdown(self) -> list[dict]:
        """Per outcome, handoff reason, CSAT score and agent (no time)."""
        if self.from_rollup:
            rows = self.rollup.values("outcome", "handoff_reason", "csat", "agent").annotate(n=Sum("conversations"))
        else:
            rows = self.qs.values("outcome", "handoff_reason", "csat", "agent").annotate(n=Count("*"))
        return list(rows.order_by())

    def total(self) -> dict:
        tally = _tally()
        if "hourly" in self.__dict__:  # already read: no need for another query
            rows = self.hourly
        else:  # the previous period's headline figures need no time axis
            source = self.rollup if self.from_rollup else self.qs
            rows = source.values("outcome").annotate(**(_SUMS if self.from_rollup else _direct_sums())).order_by()
        for r in rows:
            _add(tally, r)
        return _rates(tally)

    def _frt(self):
        return self.qs.filter(first_response_s__isnull=False)

    def _resolution(self):
        return self.qs.filter(outcome__in=[Outcome.RESOLVED_BY_BOT, Outcome.HANDED_OFF], resolution_s__isnull=False)

    @cached_property
    def percentiles(self) -> dict:
        # Exact percentiles need the values: each read is one narrow partial index
        # (analytics_final_frt, analytics_final_resolution) and one sort for p50 and p90.
        if connection.vendor == "postgresql":
            frt = self._frt().aggregate(p=Percentiles("first_response_s"))["p"] or (None, None)
            resolution = self._resolution().aggregate(p=Percentiles("resolution_s"))["p"] or (None, None)
        else:
            frt = _numpy_percentiles(self._frt().values_list("first_response_s", flat=True))
            resolution = _numpy_percentiles(self._resolution().values_list("resolution_s", flat=True))
        got = {
            "frt_p50_s": frt[0],
            "frt_p90_s": frt[1],
            "resolution_time_p50_s": resolution[0],
            "resolution_time_p90_s": resolution[1],
        }
        return {k: _round(v) for k, v in got.items()}

    def agent_percentiles(self) -> dict:
        qs = self._frt().filter(agent__isnull=False)
        if connection.vendor == "postgresql":
            rows = qs.values("agent").annotate(p=Percentiles("first_response_s")).order_by()
            return {r["agent"]: (_round(r["p"][0]), _round(r["p"][1])) for r in rows}
        times = defaultdict(list)
        for agent_id, seconds in qs.values_list("agent", "first_response_s"):
            times[agent_id].append(seconds)
        return {a: tuple(_round(v) for v in _numpy_percentiles(t)) for a, t in times.items()}


# --- Tables (each one is a CSV export) -------------------------------------------------


def summary(period: Period, snap: Snapshot | None = None) -> list[dict]:
    """The headline figures, one row."""
    snap = snap or Snapshot(period)
    row = {"start": period.start, "end": period.end, **snap.total(), **snap.percentiles}
    row.update(suggestion_acceptance(period)[0])
    return [row]


def outcomes_by_day(period: Period, snap: Snapshot | None = None) -> list[dict]:
    snap = snap or Snapshot(period)
    by_day = {day: dict.fromkeys(COUNTED, 0) for day in period.each_day()}
    for r in snap.hourly:
        by_day[r["at"].date()][r["outcome"]] += r["n"]
    return [{"day": day, **counts, "total": sum(counts.values())} for day, counts in by_day.items()]


def _version_label(version_id, model_ids: dict) -> str:
    if version_id is None:
        return "no model"
    return f"v{version_id} {model_ids.get(version_id, '')}".strip()


def _model_ids() -> dict:
    from chatbot.nlu.models import ModelVersion

    return dict(ModelVersion.objects.values_list("pk", "model_id"))


def model_versions(period: Period, snap: Snapshot | None = None) -> list[dict]:
    """Every rate per intent model version (the version of the conversation's first bot answer)."""
    snap = snap or Snapshot(period)
    tallies: dict = defaultdict(_tally)
    for r in snap.hourly:
        _add(tallies[r["model_version"]], r)
    model_ids = _model_ids()
    order = sorted(tallies, key=lambda v: (v is None, v or 0))
    return [{"model_version": _version_label(v, model_ids), **_rates(tallies[v])} for v in order]


def resolution_by_day(period: Period, snap: Snapshot | None = None) -> list[dict]:
    """Automated resolution rate per day and model version (the chart's lines)."""
    snap = snap or Snapshot(period)
    counts: dict = defaultdict(lambda: [0, 0])
    for r in snap.hourly:
        cell = counts[(r["at"].date(), r["model_version"])]
        cell[0] += r["n"]
        cell[1] += r["n"] if r["outcome"] == Outcome.RESOLVED_BY_BOT else 0
    model_ids = _model_ids()
    return [
        {
            "day": day,
            "model_version": _version_label(version, model_ids),
            "conversations": n,
            "resolved": resolved,
            "resolution_rate": _rate(resolved, n),
        }
        for (day, version), (n, resolved) in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))
    ]


def handoff_reasons(period: Period, snap: Snapshot | None = None) -> list[dict]:
    snap = snap or Snapshot(period)
    total = sum(r["n"] for r in snap.breakdown)
    counts: dict = defaultdict(lambda: [0, 0])
    for r in snap.breakdown:
        if r["outcome"] in (Outcome.HANDED_OFF, Outcome.ABANDONED):
            counts[r["handoff_reason"]][0] += r["n"]
            counts[r["handoff_reason"]][1] += r["n"] if r["outcome"] == Outcome.ABANDONED else 0
    rows = [
        {"handoff_reason": reason, "handoffs": n, "abandoned": abandoned, "handoff_rate": _rate(n, total)}
        for reason, (n, abandoned) in counts.items()
    ]
    return sorted(rows, key=lambda r: (-r["handoffs"], r["handoff_reason"]))


def csat_distribution(period: Period, snap: Snapshot | None = None) -> list[dict]:
    snap = snap or Snapshot(period)
    counts: dict = defaultdict(int)
    for r in snap.breakdown:
        if r["csat"] is not None:
            counts[r["csat"]] += r["n"]
    rated = sum(counts.values())
    return [{"score": s, "ratings": counts.get(s, 0), "share": _rate(counts.get(s, 0), rated)} for s in range(1, 6)]


def agents(period: Period, snap: Snapshot | None = None) -> list[dict]:
    """Per agent: conversations handled, first response time after the handoff, CSAT."""
    from django.contrib.auth import get_user_model

    snap = snap or Snapshot(period)
    tallies: dict = defaultdict(lambda: [0, 0, 0])  # handled, rated, csat sum
    for r in snap.breakdown:
        if r["agent"] is not None:
            t = tallies[r["agent"]]
            t[0] += r["n"]
            if r["csat"] is not None:
                t[1] += r["n"]
                t[2] += r["n"] * r["csat"]
    times = snap.agent_percentiles() if tallies else {}
    users = get_user_model().objects.filter(pk__in=list(tallies))
    names = {u.pk: u.get_full_name() or u.get_username() for u in users}
    result = [
        {
            "agent": names.get(agent_id, agent_id),
            "handled": handled,
            "frt_p50_s": times.get(agent_id, (None, None))[0],
            "frt_p90_s": times.get(agent_id, (None, None))[1],
            "rated": rated,
            "csat_mean": round(csat_sum / rated, 2) if rated else None,
        }
        for agent_id, (handled, rated, csat_sum) in tallies.items()
    ]
    return sorted(result, key=lambda r: (-r["handled"], str(r["agent"])))


def hour_of_week(period: Period, snap: Snapshot | None = None) -> list[dict]:
    snap = snap or Snapshot(period)
    grid: dict = defaultdict(int)
    for r in snap.hourly:
        grid[(r["at"].isoweekday(), r["at"].hour)] += r["n"]
    return [
        {"weekday": WEEKDAYS[d - 1], "hour": h, "conversations": grid.get((d, h), 0)}
        for d in range(1, 8)
        for h in range(24)
    ]


def top_intents(period: Period, limit: int = 15) -> list[dict]:
    """What visitors asked, by the intent the model predicted for their messages."""
    start, end = period.bounds()
    rows = (
        Message.objects.filter(created_at__gte=start, created_at__lt=end, sender=Message.Sender.VISITOR)
        .exclude(intent="")
        .values("intent")
        .annotate(messages=Count("intent"))  # not the id: the index holds the intent, so no table reads
        .order_by("-messages", "intent")[:limit]
    )
    return list(rows)


def top_fallback_messages(period: Period, limit: int = 15) -> list[dict]:
    """The visitor messages the bot most often answered with the fallback (same text)."""
    start, end = period.bounds()
    rows = (
        UnansweredMessage.objects.filter(created_at__gte=start, created_at__lt=end, source=Feedback.Source.FALLBACK)
        .values("text")
        .annotate(fallbacks=Count("*"))
        .order_by("-fallbacks", "text")[:limit]
    )
    return list(rows)


def suggestion_acceptance(period: Period) -> list[dict]:
    """Reply suggestions shown to agents, and how many their reply used (as is or edited)."""
    from chatbot.replies.models import SuggestionEvent

    start, end = period.bounds()
    counts = SuggestionEvent.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        suggestions_shown=Count("*"),
        suggestions_decided=Count("pk", filter=~Q(outcome=SuggestionEvent.Outcome.SHOWN)),
        suggestions_accepted=Count("pk", filter=Q(outcome__in=SuggestionEvent.ACCEPTED)),
    )
    counts["suggestion_acceptance"] = _rate(counts["suggestions_accepted"], counts["suggestions_decided"])
    return [counts]


TABLES = {
    "summary": ("Summary", summary),
    "outcomes_by_day": ("Outcomes per day", outcomes_by_day),
    "model_versions": ("Per model version", model_versions),
    "resolution_by_day": ("Resolution rate per day and model version", resolution_by_day),
    "handoff_reasons": ("Handoffs by reason", handoff_reasons),
    "csat": ("CSAT distribution", csat_distribution),
    "agents": ("Per agent", agents),
    "hour_of_week": ("Conversations per hour of the week", hour_of_week),
    "top_intents": ("Top intents", top_intents),
    "top_fallbacks": ("Top fallback messages", top_fallback_messages),
    "suggestions": ("Reply suggestion acceptance", suggestion_acceptance),
}


def compare(current: dict, previous: dict, keys: list[str]) -> dict:
    """Change against the previous period, per headline figure (None where either is missing)."""
    return {
        k: (round(current[k] - previous[k], 4) if current.get(k) is not None and previous.get(k) is not None else None)
        for k in keys
    }
