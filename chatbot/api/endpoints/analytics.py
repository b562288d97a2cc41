"""Analytics summaries: the Reports page's headline figures for a date range, with the
previous period beside them, per model version and by handoff reason (docs/analytics.md)."""

from django.http import HttpRequest
from ninja import Router

from chatbot.analytics import reports
from chatbot.api import auth
from chatbot.api.endpoints import COMMON_PROBLEMS
from chatbot.api.problems import ApiProblem

router = Router(tags=["analytics"])


def _rows(rows: list[dict]) -> list[dict]:
    """JSON-ready rows: dates as ISO strings."""
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()} for row in rows]


@router.get("/analytics/summary", response={200: dict, **COMMON_PROBLEMS}, auth=auth.read)
def summary(request: HttpRequest, start: str | None = None, end: str | None = None):
    """Resolution, containment, fallback and handoff rates, CSAT and response times for whole
    days `start`..`end` (YYYY-MM-DD, site time zone; default the last 30 days), the same for
    the period before, per model version and by handoff reason. Scope: read."""
    try:
        period = reports.Period.parse(start, end)
    except reports.PeriodError as exc:
        raise ApiProblem(400, "invalid_period", str(exc)) from None
    return {
        "summary": _rows(reports.summary(period))[0],
        "previous": _rows(reports.summary(period.previous()))[0],
        "model_versions": _rows(reports.model_versions(period)),
        "handoff_reasons": _rows(reports.handoff_reasons(period)),
    }
