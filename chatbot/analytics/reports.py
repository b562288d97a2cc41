"""The reports: plain functions from a date range to rows, read by the Reports
page, its charts and its CSV exports alike, so a CSV always says what the page says.

Outcome figures read the final outcomes (ConversationOutcome) of the conversations
whose first visitor message falls in the range, through one partial index.
"""

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
from django.conf import settings
from django.db.models import Avg, Count, Q, Sum
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay, TruncDate

from chatbot.analytics.models import COUNTED, ConversationOutcome, Outcome
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


def _percentiles(values) -> tuple[float | None, float | None]:
    data = np.fromiter((v for v in values if v is not None), dtype=float)
    if not data.size:
        return None, None
    p50, p90 = np.percentile(data, [50, 90])
    return round(float(p50), 1), round(float(p90), 1)


def _counts():
    handed = Q(outcome__in=[Outcome.HANDED_OFF, Outcome.ABANDONED])
    return {
        "conversations": Count("pk"),
        "resolved": Count("pk", filter=Q(outcome=Outcome.RESOLVED_BY_BOT)),
        "handed_off": Count("pk", filter=Q(outcome=Outcome.HANDED_OFF)),
        "abandoned": Count("pk", filter=Q(outcome=Outcome.ABANDONED)),
        "unanswered": Count("pk", filter=Q(outcome=Outcome.UNANSWERED)),
        "handoffs": Count("pk", filter=handed),
        "bot_answers": Sum("bot_answers"),
        "fallbacks": Sum("fallbacks"),
        "rated": Count("csat"),
        "csat_mean": Avg("csat"),
    }


def _rates(row: dict) -> dict:
    n = row["conversations"]
    row["bot_answers"] = row["bot_answers"] or 0
    row["fallbacks"] = row["fallbacks"] or 0
    row.update(
        resolution_rate=_rate(row["resolved"], n),
        containment_rate=_rate(n - row["handoffs"], n),
        handoff_rate=_rate(row["handoffs"], n),
        fallback_rate=_rate(row["fallbacks"], row["bot_answers"]),
        csat_mean=round(row["csat_mean"], 2) if row["csat_mean"] is not None else None,
        csat_response_rate=_rate(row["rated"], n),
    )
    return row


# --- Tables (each one is a CSV export) -------------------------------------------------


def summary(period: Period) -> list[dict]:
    """The headline figures, one row."""
    qs = outcomes_in(period)
    row = _rates(qs.aggregate(**_counts()))
    row["frt_p50_s"], row["frt_p90_s"] = _percentiles(
        qs.filter(first_response_s__isnull=False).values_list("first_response_s", flat=True)
    )
    row["resolution_time_p50_s"], row["resolution_time_p90_s"] = _percentiles(
        qs.filter(outcome__in=[Outcome.RESOLVED_BY_BOT, Outcome.HANDED_OFF]).values_list("resolution_s", flat=True)
    )
    row.update(suggestion_acceptance(period)[0])
    return [{"start": period.start, "end": period.end, **row}]


def outcomes_by_day(period: Period) -> list[dict]:
    rows = (
        outcomes_in(period)
        .annotate(day=TruncDate("started_at", tzinfo=site_zone()))
        .values("day", "outcome")
        .annotate(n=Count("pk"))
    )
    by_day = {day: dict.fromkeys(COUNTED, 0) for day in period.each_day()}
    for r in rows:
        by_day[r["day"]][r["outcome"]] = r["n"]
    return [{"day": day, **counts, "total": sum(counts.values())} for day, counts in by_day.items()]


def _version_label(version_id, model_ids: dict) -> str:
    if version_id is None:
        return "no model"
    return f"v{version_id} {model_ids.get(version_id, '')}".strip()


def _model_ids() -> dict:
    from chatbot.nlu.models import ModelVersion

    return dict(ModelVersion.objects.values_list("pk", "model_id"))


def model_versions(period: Period) -> list[dict]:
    """Every rate per intent model version (the version of the conversation's first bot answer)."""
    rows = outcomes_in(period).values("model_version").annotate(**_counts()).order_by("model_version")
    model_ids = _model_ids()
    return [{"model_version": _version_label(r.pop("model_version"), model_ids), **_rates(r)} for r in rows]


def resolution_by_day(period: Period) -> list[dict]:
    """Automated resolution rate per day and model version (the chart's lines)."""
    rows = (
        outcomes_in(period)
        .annotate(day=TruncDate("started_at", tzinfo=site_zone()))
        .values("day", "model_version")
        .annotate(conversations=Count("pk"), resolved=Count("pk", filter=Q(outcome=Outcome.RESOLVED_BY_BOT)))
        .order_by("day", "model_version")
    )
    model_ids = _model_ids()
    return [
        {
            "day": r["day"],
            "model_version": _version_label(r["model_version"], model_ids),
            "conversations": r["conversations"],
            "resolved": r["resolved"],
            "resolution_rate": _rate(r["resolved"], r["conversations"]),
        }
        for r in rows
    ]


def handoff_reasons(period: Period) -> list[dict]:
    qs = outcomes_in(period)
    total = qs.count()
    rows = (
        qs.filter(outcome__in=[Outcome.HANDED_OFF, Outcome.ABANDONED])
        .values("handoff_reason")
        .annotate(handoffs=Count("pk"), abandoned=Count("pk", filter=Q(outcome=Outcome.ABANDONED)))
        .order_by("-handoffs")
    )
    return [{**r, "handoff_rate": _rate(r["handoffs"], total)} for r in rows]


def csat_distribution(period: Period) -> list[dict]:
    counts = dict(outcomes_in(period).filter(csat__isnull=False).values_list("csat").annotate(n=Count("pk")))
    rated = sum(counts.values())
    return [{"score": s, "ratings": counts.get(s, 0), "share": _rate(counts.get(s, 0), rated)} for s in range(1, 6)]


def agents(period: Period) -> list[dict]:
    """Per agent: conversations handled, first response time after the handoff, CSAT."""
    from django.contrib.auth import get_user_model

    qs = outcomes_in(period).filter(agent__isnull=False)
    rows = qs.values("agent").annotate(handled=Count("pk"), rated=Count("csat"), csat_mean=Avg("csat"))
    times = defaultdict(list)
    for agent_id, seconds in qs.filter(first_response_s__isnull=False).values_list("agent", "first_response_s"):
        times[agent_id].append(seconds)
    names = {
        u.pk: u.get_full_name() or u.get_username()
        for u in get_user_model().objects.filter(pk__in=[r["agent"] for r in rows])
    }
    result = []
    for r in rows:
        p50, p90 = _percentiles(times[r["agent"]])
        result.append(
            {
                "agent": names.get(r["agent"], r["agent"]),
                "handled": r["handled"],
                "frt_p50_s": p50,
                "frt_p90_s": p90,
                "rated": r["rated"],
                "csat_mean": round(r["csat_mean"], 2) if r["csat_mean"] is not None else None,
            }
        )
    return sorted(result, key=lambda r: -r["handled"])


def hour_of_week(period: Period) -> list[dict]:
    zone = site_zone()
    rows = (
        outcomes_in(period)
        .annotate(weekday=ExtractIsoWeekDay("started_at", tzinfo=zone), hour=ExtractHour("started_at", tzinfo=zone))
        .values("weekday", "hour")
        .annotate(conversations=Count("pk"))
    )
    grid = {(r["weekday"], r["hour"]): r["conversations"] for r in rows}
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
        .annotate(messages=Count("pk"))
        .order_by("-messages", "intent")[:limit]
    )
    return list(rows)


def top_fallback_messages(period: Period, limit: int = 15) -> list[dict]:
    """The visitor messages the bot most often answered with the fallback (same text)."""
    start, end = period.bounds()
    rows = (
        Message.objects.filter(
            created_at__gte=start,
            created_at__lt=end,
            sender=Message.Sender.VISITOR,
            feedback__source=Feedback.Source.FALLBACK,
        )
        .values("text")
        .annotate(fallbacks=Count("pk"))
        .order_by("-fallbacks", "text")[:limit]
    )
    return list(rows)


def suggestion_acceptance(period: Period) -> list[dict]:
    """Reply suggestions shown to agents, and how many their reply used (as is or edited)."""
    from chatbot.replies.models import SuggestionEvent

    start, end = period.bounds()
    counts = SuggestionEvent.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        suggestions_shown=Count("pk"),
        suggestions_decided=Count("pk", filter=~Q(outcome=SuggestionEvent.Outcome.SHOWN)),
        suggestions_accepted=Count("pk", filter=Q(outcome__in=SuggestionEvent.ACCEPTED)),
    )
    counts["suggestion_acceptance"] = _rate(counts["suggestions_accepted"], counts["suggestions_decided"])
    return [counts]


def open_conversations(period: Period) -> int:
    """Conversations started in the range whose outcome is not final yet (not counted)."""
    from chatbot.conversations.models import Conversation

    start, end = period.bounds()
    return (
        Conversation.objects.filter(created_at__gte=start, created_at__lt=end)
        .exclude(outcome__final=True)
        .filter(last_seq__gt=0)
        .count()
    )


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
