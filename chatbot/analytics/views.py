"""The Reports page for supervisors (/agent/reports/): headline figures against the
previous period, charts (SVG drawn on the server), every table, each as CSV."""

import csv
from functools import wraps

from django import forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from chatbot.analytics import cache as report_cache
from chatbot.analytics import charts, clusters, reports
from chatbot.analytics.models import SeedRun
from chatbot.audit.services import record

PERMISSION = "analytics.view_reports"

HEADLINES = [
    ("conversations", "Conversations", "count"),
    ("resolution_rate", "Automated resolution rate", "rate"),
    ("containment_rate", "Containment rate", "rate"),
    ("fallback_rate", "Fallback rate", "rate"),
    ("handoff_rate", "Handoff rate", "rate"),
    ("csat_mean", "CSAT (mean of 1-5)", "score"),
    ("csat_response_rate", "CSAT response rate", "rate"),
    ("frt_p50_s", "Agent first response p50", "seconds"),
    ("frt_p90_s", "Agent first response p90", "seconds"),
    ("resolution_time_p50_s", "Resolution time p50", "seconds"),
    ("suggestion_acceptance", "Suggestion acceptance", "rate"),
]
# Tables shown on the page, in order (all of reports.TABLES are exported).
SNAPSHOT_TABLES = {"model_versions", "handoff_reasons", "agents", "csat", "outcomes_by_day"}
PAGE_TABLES = ["model_versions", "handoff_reasons", "agents", "csat", "top_intents", "top_fallbacks", "outcomes_by_day"]


def can_view_reports(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(PERMISSION))


def supervisor_required(view):
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("analytics:login"))
        if not can_view_reports(request.user):
            return render(request, "analytics/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


class ReportsLoginForm(AuthenticationForm):
    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if not can_view_reports(user):
            raise forms.ValidationError("This account may not view the reports (ask for the Supervisors group).")


class LoginView(auth_views.LoginView):
    template_name = "analytics/login.html"
    authentication_form = ReportsLoginForm

    def get_default_redirect_url(self) -> str:
        return reverse("analytics:reports")


def _period(request: HttpRequest) -> tuple[reports.Period, str]:
    try:
        return reports.Period.parse(request.GET.get("start"), request.GET.get("end")), ""
    except reports.PeriodError as exc:
        return reports.Period.parse(None, None), str(exc)


def display(key: str, value) -> str:
    """A figure as the page shows it (the CSV keeps the raw number)."""
    if value is None:
        return "–"
    if key.endswith(("_rate", "acceptance")) or key == "share":
        return f"{100 * value:.1f}%"
    if key.endswith("_s"):
        return f"{value / 60:.1f} min" if value >= 120 else f"{value:.0f} s"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _delta(key: str, kind: str, value) -> str:
    if value is None or value == 0:
        return "±0" if value == 0 else ""
    sign = "+" if value > 0 else "−"
    if kind == "rate":
        return f"{sign}{abs(100 * value):.1f} pts"
    return f"{sign}{display(key, abs(value))}"


def _table(name: str, period: reports.Period, snap: reports.Snapshot) -> dict:
    title, function = reports.TABLES[name]
    rows = function(period, snap) if name in SNAPSHOT_TABLES else function(period)
    columns = list(rows[0]) if rows else []
    return {
        "name": name,
        "title": title,
        "columns": columns,
        "rows": [[display(c, r[c]) for c in columns] for r in rows],
    }


@require_GET
@supervisor_required
def reports_page(request: HttpRequest) -> HttpResponse:
    period, error = _period(request)
    context = report_cache.cached(
        f"page:{reports.site_zone().key}:{period.start}:{period.end}", lambda: _page_context(period)
    )
    return render(request, "analytics/reports.html", {**context, "error": error})


def _page_context(period: reports.Period) -> dict:
    snap = reports.Snapshot(period)
    snap.hourly  # noqa: B018 - read once, for the tables and the headline figures alike
    current = reports.summary(period, snap)[0]
    previous = reports.summary(period.previous())[0]
    deltas = reports.compare(current, previous, [k for k, _, _ in HEADLINES])
    query = f"start={period.start.isoformat()}&end={period.end.isoformat()}"
    return {
        "period": period,
        "previous_period": period.previous(),
        "query": query,
        "zone": reports.site_zone().key,
        "headlines": [
            {
                "key": key,
                "label": label,
                "value": display(key, current[key]),
                "previous": display(key, previous[key]),
                "delta": _delta(key, kind, deltas[key]),
                "raw": current[key],
            }
            for key, label, kind in HEADLINES
        ],
        "outcomes": [
            (label, current[key])
            for key, label in (
                ("resolved", "resolved by the bot"),
                ("handed_off", "handed off"),
                ("abandoned", "abandoned"),
                ("unanswered", "unanswered"),
            )
        ],
        "charts": [{"name": name, "title": title} for name, (title, _) in charts.CHARTS.items()],
        "tables": [_table(name, period, snap) for name in PAGE_TABLES],
        "exports": [{"name": name, "title": title} for name, (title, _) in reports.TABLES.items()],
        "demo_data": SeedRun.objects.filter(demo=True).exists(),
    }


@require_GET
@supervisor_required
def chart(request: HttpRequest, name: str) -> HttpResponse:
    if name not in charts.CHARTS:
        raise Http404("No such chart.")
    period, _ = _period(request)
    svg = report_cache.cached(
        f"chart:{name}:{reports.site_zone().key}:{period.start}:{period.end}", lambda: charts.CHARTS[name][1](period)
    )
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=60"
    return response


def _csv_response(filename: str, rows: list[dict]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    if rows:
        writer.writerow(list(rows[0]))
        for row in rows:
            writer.writerow(["" if v is None else v for v in row.values()])
    return response


@require_GET
@supervisor_required
def export(request: HttpRequest, name: str) -> HttpResponse:
    period, _ = _period(request)
    if name == "unanswered":
        rows = [
            {"group": g.label, "messages": g.count, "examples": " | ".join(g.examples)}
            for g in clusters.top_unanswered(period)
        ]
    elif name in reports.TABLES:
        rows = reports.TABLES[name][1](period)
    else:
        raise Http404("No such table.")
    record(request.user, "analytics.export", name, start=str(period.start), end=str(period.end), rows=len(rows))
    return _csv_response(f"{name}-{period.start}-{period.end}.csv", rows)


@require_GET
@supervisor_required
def unanswered(request: HttpRequest) -> HttpResponse:
    period, error = _period(request)
    context = {
        "period": period,
        "error": error,
        "query": f"start={period.start.isoformat()}&end={period.end.isoformat()}",
        "zone": reports.site_zone().key,
        "groups": clusters.top_unanswered(period),
        "demo_data": SeedRun.objects.filter(demo=True).exists(),
    }
    return render(request, "analytics/unanswered.html", context)
