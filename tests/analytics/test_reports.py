"""Rates as docs/analytics.md defines them, per model version and per agent, in the
site's time zone; the Reports page's doors, charts and CSV exports; /metrics."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import Client

from chatbot.analytics import clusters, reports
from chatbot.analytics.models import ConversationOutcome, Outcome
from chatbot.conversations.models import Conversation, Visitor

DAY = date(2026, 3, 10)


def outcome(outcome: str, *, at: datetime | None = None, version=None, **fields) -> ConversationOutcome:
    visitor = Visitor.objects.create(token_hash=str(Visitor.objects.count()))
    conversation = Conversation.objects.create(visitor=visitor)
    return ConversationOutcome.objects.create(
        conversation=conversation,
        outcome=outcome,
        final=True,
        started_at=at or datetime(2026, 3, 10, 12, tzinfo=UTC),
        model_version=version,
        **fields,
    )


@pytest.fixture
def period():
    return reports.Period(DAY, DAY)


def test_rates_per_model_version(db, version, other_version, period):
    # v1: 2 of 4 resolved, one handoff, one unanswered; 10 answers, 3 fallbacks.
    outcome(Outcome.RESOLVED_BY_BOT, version=version, bot_answers=3, csat=5)
    outcome(Outcome.RESOLVED_BY_BOT, version=version, bot_answers=2)
    outcome(Outcome.HANDED_OFF, version=version, bot_answers=2, fallbacks=2, handoff_reason="fallback", csat=3)
    outcome(Outcome.UNANSWERED, version=version, bot_answers=3, fallbacks=1)
    # v2: 1 of 1 resolved.
    outcome(Outcome.RESOLVED_BY_BOT, version=other_version, bot_answers=1)
    outcome(Outcome.NO_VISITOR_MESSAGE, version=version)  # never counted
    not_final = outcome(Outcome.RESOLVED_BY_BOT, version=version)
    ConversationOutcome.objects.filter(pk=not_final.pk).update(final=False)  # not counted until final

    rows = {r["model_version"]: r for r in reports.model_versions(period)}
    v1, v2 = rows[f"v{version.pk} v-test"], rows[f"v{other_version.pk} v-test-2"]
    assert (v1["conversations"], v1["resolved"], v1["handoffs"]) == (4, 2, 1)
    assert v1["resolution_rate"] == 0.5
    assert v1["containment_rate"] == 0.75
    assert v1["fallback_rate"] == 0.3
    assert v1["csat_mean"] == 4.0 and v1["csat_response_rate"] == 0.5
    assert (v2["conversations"], v2["resolution_rate"]) == (1, 1.0)

    total = reports.summary(period)[0]
    assert (total["conversations"], total["resolved"], total["resolution_rate"]) == (5, 3, 0.6)


def test_abandoned_counts_as_a_handoff_by_reason(db, period):
    outcome(Outcome.ABANDONED, handoff_reason="requested")
    outcome(Outcome.HANDED_OFF, handoff_reason="requested")
    outcome(Outcome.HANDED_OFF, handoff_reason="fallback")
    outcome(Outcome.RESOLVED_BY_BOT)
    rows = {r["handoff_reason"]: r for r in reports.handoff_reasons(period)}
    assert (rows["requested"]["handoffs"], rows["requested"]["abandoned"], rows["requested"]["handoff_rate"]) == (
        2,
        1,
        0.5,
    )
    assert rows["fallback"]["handoff_rate"] == 0.25
    assert reports.summary(period)[0]["containment_rate"] == 0.25


def test_agents_frt_percentiles_and_csat(db, agent, other_agent, period):
    for seconds in (10, 20, 30, 40, 100):
        outcome(Outcome.HANDED_OFF, agent=agent, first_response_s=seconds, csat=4)
    outcome(Outcome.HANDED_OFF, agent=other_agent, first_response_s=60, csat=2)
    rows = {r["agent"]: r for r in reports.agents(period)}
    assert rows["Alice"]["handled"] == 5
    assert rows["Alice"]["frt_p50_s"] == 30.0
    assert rows["Alice"]["frt_p90_s"] == 76.0  # linear interpolation between 40 and 100
    assert (rows["Bob"]["handled"], rows["Bob"]["csat_mean"]) == (1, 2.0)


def test_days_are_site_time_zone_days(db, settings):
    settings.SITE_TIME_ZONE = "America/New_York"
    # 03:00 UTC on 11 March is 23:00 on 10 March in New York.
    outcome(Outcome.RESOLVED_BY_BOT, at=datetime(2026, 3, 11, 3, tzinfo=UTC))
    assert reports.summary(reports.Period(DAY, DAY))[0]["conversations"] == 1
    assert reports.summary(reports.Period(DAY + timedelta(days=1), DAY + timedelta(days=1)))[0]["conversations"] == 0
    (hour,) = [r for r in reports.hour_of_week(reports.Period(DAY, DAY)) if r["conversations"]]
    assert (hour["weekday"], hour["hour"]) == ("Tue", 23)


def test_previous_period_is_the_same_length_just_before():
    period = reports.Period(date(2026, 3, 1), date(2026, 3, 30))
    assert period.previous() == reports.Period(date(2026, 1, 30), date(2026, 2, 28))


@pytest.mark.parametrize("start,end", [("2026-03-10", "2026-03-01"), ("yesterday", None), ("2020-01-01", "2026-01-01")])
def test_bad_date_range_is_refused(start, end):
    with pytest.raises(reports.PeriodError):
        reports.Period.parse(start, end)


def test_outcomes_per_day_total_matches_the_summary(db, period):
    for kind in (Outcome.RESOLVED_BY_BOT, Outcome.RESOLVED_BY_BOT, Outcome.UNANSWERED, Outcome.ABANDONED):
        outcome(kind)
    (day,) = reports.outcomes_by_day(period)
    assert day["total"] == reports.summary(period)[0]["conversations"] == 4


# --- The page and its doors ------------------------------------------------------------


def client_for(user) -> Client:
    client = Client(HTTP_HOST="127.0.0.1")
    if user is not None:
        client.force_login(user)
    return client


def test_anonymous_is_sent_to_log_in(db):
    response = client_for(None).get("/agent/reports/")
    assert response.status_code == 302 and response["Location"].startswith("/agent/reports/login/")


@pytest.mark.parametrize(
    "door", ["/agent/reports/", "/agent/reports/export/summary.csv", "/agent/reports/charts/csat.svg"]
)
def test_agents_and_strangers_may_not_see_reports(agent, stranger, door):
    assert client_for(agent).get(door).status_code == 403
    assert client_for(stranger).get(door).status_code == 403


def test_agent_cannot_log_in_to_reports(agent):
    response = Client(HTTP_HOST="127.0.0.1").post(
        "/agent/reports/login/", {"username": "alice", "password": "pw-alice"}
    )
    assert response.status_code == 200 and b"may not view the reports" in response.content


def test_supervisor_sees_figures_charts_and_csv(supervisor):
    outcome(Outcome.RESOLVED_BY_BOT, at=datetime.now(UTC) - timedelta(days=1))
    outcome(Outcome.UNANSWERED, at=datetime.now(UTC) - timedelta(days=1))
    outcome(Outcome.RESOLVED_BY_BOT, at=datetime.now(UTC) - timedelta(days=40))  # previous period
    client = client_for(supervisor)
    page = client.get("/agent/reports/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "50.0%" in html and "previous 100.0%" in html and "−50.0 pts" in html
    for name in ("resolution_rate", "outcomes", "hour_of_week", "csat", "top_intents", "top_fallbacks"):
        chart = client.get(f"/agent/reports/charts/{name}.svg")
        assert chart["Content-Type"] == "image/svg+xml" and chart.content.lstrip().startswith(b"<?xml")
    rows = list(csv.DictReader(io.StringIO(client.get("/agent/reports/export/outcomes_by_day.csv").content.decode())))
    assert len(rows) == 30 and sum(int(r["total"]) for r in rows) == 2
    for name in reports.TABLES:
        assert client.get(f"/agent/reports/export/{name}.csv").status_code == 200
    assert client.get("/agent/reports/export/nope.csv").status_code == 404


def test_a_bad_range_shows_why_and_the_default_range(supervisor):
    page = client_for(supervisor).get("/agent/reports/?start=2026-03-10&end=2026-03-01")
    assert page.status_code == 200 and b"must not be after" in page.content


# --- Top unanswered questions -----------------------------------------------------------


def test_unanswered_questions_are_grouped_by_meaning():
    texts = [
        ("do you sell gift cards", 5, [1]),
        ("can I buy a gift card", 3, [2]),
        ("can I change my delivery address", 4, [3]),
        ("update the shipping address on my order", 2, [4]),
    ]
    groups = clusters.group(texts, distance=0.5)
    assert [(g.label, g.count) for g in groups] == [
        ("do you sell gift cards", 8),
        ("can I change my delivery address", 6),
    ]
    assert sorted(groups[0].feedback_ids) == [1, 2]
    assert "id__in=1,2" in groups[0].review_url or "id__in=2,1" in groups[0].review_url


# --- /metrics ---------------------------------------------------------------------------------


def test_metrics_only_from_this_machine_without_a_token(db):
    assert Client(REMOTE_ADDR="127.0.0.1", HTTP_HOST="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="203.0.113.9", HTTP_HOST="127.0.0.1").get("/metrics").status_code == 403


def test_metrics_with_a_token_need_it(db, settings):
    settings.METRICS_TOKEN = "s3cret"
    remote = Client(REMOTE_ADDR="203.0.113.9", HTTP_HOST="127.0.0.1")
    assert remote.get("/metrics").status_code == 403
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_metrics_count_messages_answers_and_latency(chat, version, django_capture_on_commit_callbacks):
    from chatbot.analytics import metrics

    metrics.store().clear()
    version.is_active = True
    version.save()
    with django_capture_on_commit_callbacks(execute=True):
        chat.resolved_exchange()
        chat.bot_answers(chat.ask("gift cards?"), confident=False)
    text = Client(HTTP_HOST="127.0.0.1").get("/metrics").content.decode()
    assert "chatbot_messages_received_total 2.0" in text
    assert 'chatbot_bot_answers_total{outcome="answered"} 1.0' in text
    assert 'chatbot_bot_answers_total{outcome="fallback"} 1.0' in text
    assert "chatbot_reply_latency_seconds_count 2.0" in text
    assert 'chatbot_celery_queue_depth{queue="inference"}' in text
    assert f'chatbot_intent_model_info{{model_id="v-test",version="{version.pk}"}} 1.0' in text
    assert 'chatbot_active_websockets{kind="visitor"}' in text


def test_fallbacks_feed_top_fallback_messages_and_unanswered_questions(chat):
    chat.bot_answers(chat.ask("do you sell gift cards"), confident=False)
    chat.bot_answers(chat.ask("do you sell gift cards"), confident=False)
    today = reports.Period.parse(None, None)
    assert reports.top_fallback_messages(today) == [{"text": "do you sell gift cards", "fallbacks": 2}]
    assert [(t, n) for t, n, _ in clusters.unanswered_texts(today)] == [("do you sell gift cards", 2)]


def test_a_rendered_page_is_kept_until_outcomes_change(chat, supervisor, django_capture_on_commit_callbacks):
    from chatbot.analytics import outcomes
    from tests.analytics.conftest import later

    client = client_for(supervisor)
    chat.resolved_exchange()

    def conversations() -> str:
        html = client.get("/agent/reports/").content.decode()
        return html.split('data-key="conversations"')[1].split('data-raw="')[1].split('"')[0]

    assert conversations() == "0"
    Conversation.objects.filter(pk=chat.id).update(updated_at=later() - timedelta(days=3))
    assert conversations() == "0"  # nothing was finalised: the kept page is still right
    with django_capture_on_commit_callbacks(execute=True):
        outcomes.finalise([chat.id])
    assert conversations() == "1"


def test_a_group_opens_its_messages_in_the_review_inbox(chat, admin, supervisor):
    chat.bot_answers(chat.ask("do you sell gift cards"), confident=False)
    chat.bot_answers(chat.ask("where can I park"), confident=False)
    page = client_for(supervisor).get("/agent/reports/unanswered/")
    assert page.status_code == 200 and b"Open in review inbox" in page.content
    (group,) = [g for g in clusters.top_unanswered(reports.Period.parse(None, None)) if "gift" in g.label]
    inbox = client_for(admin).get(group.review_url)
    assert inbox.status_code == 200
    assert b"do you sell gift cards" in inbox.content and b"where can I park" not in inbox.content
