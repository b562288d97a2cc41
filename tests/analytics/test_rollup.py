"""The hourly rollup the reports read on PostgreSQL gives exactly the figures of a
direct read of the outcomes: on hand-built conversations, when an outcome changes
after it was counted, when outcomes are deleted or bulk-updated, and across
time-zone boundaries (site days, the night the clocks go back, half-hour zones)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from chatbot.agents import services as agents
from chatbot.analytics import outcomes, reports, rollup
from chatbot.analytics.models import ConversationOutcome, Outcome, OutcomeHour, StaleHour
from chatbot.conversations import services
from chatbot.conversations.models import Conversation, Visitor
from tests.analytics.conftest import Chat, later

pytestmark = pytest.mark.skipif(
    not connection.vendor == "postgresql", reason="the rollup is PostgreSQL's (SQLite reads the outcomes directly)"
)

SNAPSHOT_TABLES = [
    reports.outcomes_by_day,
    reports.model_versions,
    reports.resolution_by_day,
    reports.handoff_reasons,
    reports.csat_distribution,
    reports.agents,
    reports.hour_of_week,
]


def figures(period: reports.Period, *, direct: bool) -> dict:
    """Every outcome table of the page, from one kind of snapshot."""
    snap = reports.Snapshot(period, direct=direct)
    assert snap.from_rollup is not direct
    tables = {table.__name__: table(period, snap) for table in SNAPSHOT_TABLES}
    tables["summary"] = reports.summary(period, snap)
    tables["previous_total"] = reports.Snapshot(period.previous(), direct=direct).total()
    return tables


def assert_rollup_matches_direct(period: reports.Period) -> dict:
    from_rollup = figures(period, direct=False)
    assert from_rollup == figures(period, direct=True)
    return from_rollup


def outcome(kind: str, at: datetime, **fields) -> ConversationOutcome:
    visitor = Visitor.objects.create(token_hash=f"rollup-{Visitor.objects.count()}")
    conversation = Conversation.objects.create(visitor=visitor)
    return ConversationOutcome.objects.create(
        conversation=conversation, outcome=kind, final=True, started_at=at, **fields
    )


def today() -> reports.Period:
    day = datetime.now(reports.site_zone()).date()
    return reports.Period(day - timedelta(days=1), day + timedelta(days=1))


def test_hand_built_conversations_give_the_direct_figures(
    demo_intents, version, other_version, agent_online, django_capture_on_commit_callbacks
):
    resolved = Chat(version)
    resolved.resolved_exchange()
    thumbs_down = Chat(other_version)
    reply = thumbs_down.resolved_exchange()
    services.record_thumbs(thumbs_down.conversation, reply.pk, "down")
    unanswered = Chat(version)
    unanswered.bot_answers(unanswered.ask("gift cards?"), confident=False)
    handed = Chat(version)
    handed.resolved_exchange()
    services.hand_off(handed.id, "requested")
    agents.take_over(handed.id, agent_online)
    agents.reply(handed.id, agent_online, "Here I am.")
    Conversation.objects.filter(pk=handed.id).update(csat=4)
    outcomes.finalise([resolved.id, thumbs_down.id, unanswered.id, handed.id], now=later())

    summary = assert_rollup_matches_direct(today())["summary"][0]
    assert (summary["conversations"], summary["resolved"], summary["unanswered"], summary["handed_off"]) == (4, 1, 2, 1)
    assert OutcomeHour.objects.exists() and not StaleHour.objects.exists()


def test_an_outcome_that_changes_after_a_handoff_moves_its_count(
    chat, agent_online, django_capture_on_commit_callbacks
):
    chat.resolved_exchange()
    outcomes.finalise([chat.id], now=later())
    counted = assert_rollup_matches_direct(today())["summary"][0]
    assert (counted["resolved"], counted["handed_off"]) == (1, 0)

    chat.ask("actually I need a person")  # no longer final: not counted at all
    assert assert_rollup_matches_direct(today())["summary"][0]["conversations"] == 0
    services.hand_off(chat.id, "requested")
    agents.take_over(chat.id, agent_online)
    agents.reply(chat.id, agent_online, "Here I am.")
    with django_capture_on_commit_callbacks(execute=True):
        agents.close(chat.id, agent_online)

    moved = assert_rollup_matches_direct(today())["summary"][0]
    assert (moved["conversations"], moved["resolved"], moved["handed_off"]) == (1, 0, 1)
    # Finalising again changes nothing, in the rollup either.
    outcomes.finalise([chat.id], now=later())
    assert assert_rollup_matches_direct(today())["summary"][0] == moved


def test_deletes_and_bulk_updates_reach_the_rollup(db, version):
    at = datetime.now(UTC) - timedelta(hours=1)
    rows = [outcome(Outcome.RESOLVED_BY_BOT, at, model_version=version, bot_answers=2) for _ in range(3)]
    assert assert_rollup_matches_direct(today())["summary"][0]["resolved"] == 3

    ConversationOutcome.objects.filter(pk=rows[0].pk).update(outcome=Outcome.UNANSWERED, csat=1)
    Conversation.objects.filter(pk=rows[1].pk).delete()  # the outcome goes with it (a cascade)
    summary = assert_rollup_matches_direct(today())["summary"][0]
    assert (summary["conversations"], summary["resolved"], summary["unanswered"], summary["rated"]) == (2, 1, 1, 1)


@pytest.mark.parametrize(
    "zone,day,starts",
    [
        # 23:30 and 00:30 local either side of midnight in Berlin (UTC+1 in March).
        ("Europe/Berlin", date(2026, 3, 10), ["2026-03-10T22:30Z", "2026-03-10T23:30Z", "2026-03-09T23:10Z"]),
        # The clocks go back at 02:00 on 1 November: 01:xx happens twice in New York.
        ("America/New_York", date(2026, 11, 1), ["2026-11-01T05:30Z", "2026-11-01T06:30Z", "2026-11-02T04:59Z"]),
        # The clocks go forward on 29 March in London: that day has 23 hours.
        ("Europe/London", date(2026, 3, 29), ["2026-03-29T00:30Z", "2026-03-29T01:30Z", "2026-03-29T23:00Z"]),
    ],
)
def test_site_days_and_hours_match_across_time_zone_boundaries(db, settings, version, zone, day, starts):
    settings.SITE_TIME_ZONE = zone
    for i, start in enumerate(starts):
        at = datetime.fromisoformat(start)
        kind = Outcome.RESOLVED_BY_BOT if i % 2 else Outcome.HANDED_OFF
        outcome(kind, at, model_version=version, csat=i + 3, handoff_reason="requested" if i % 2 == 0 else "")
    for period in (reports.Period(day, day), reports.Period(day - timedelta(days=1), day + timedelta(days=1))):
        assert_rollup_matches_direct(period)
    by_day = {r["day"]: r["total"] for r in reports.outcomes_by_day(reports.Period(day - timedelta(days=1), day))}
    assert sum(by_day.values()) == sum(
        1
        for s in starts
        if day - timedelta(days=1) <= datetime.fromisoformat(s).astimezone(reports.site_zone()).date() <= day
    )


def test_a_half_hour_zone_reads_the_outcomes_directly(db, settings, version):
    settings.SITE_TIME_ZONE = "Asia/Kolkata"  # UTC+5:30: a UTC hour is half of two local hours
    outcome(Outcome.RESOLVED_BY_BOT, datetime(2026, 3, 10, 18, 15, tzinfo=UTC), model_version=version)  # 23:45
    outcome(Outcome.RESOLVED_BY_BOT, datetime(2026, 3, 10, 18, 45, tzinfo=UTC), model_version=version)  # 00:15
    period = reports.Period(date(2026, 3, 10), date(2026, 3, 10))
    snap = reports.Snapshot(period)
    assert not snap.from_rollup
    assert snap.total()["conversations"] == 1


def test_rebuild_gives_what_the_trigger_kept(db, version, other_version, agent):
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for i in range(12):
        outcome(
            [Outcome.RESOLVED_BY_BOT, Outcome.HANDED_OFF, Outcome.UNANSWERED, Outcome.ABANDONED][i % 4],
            base - timedelta(minutes=37 * i),
            model_version=[version, other_version, None][i % 3],
            agent=agent if i % 4 == 1 else None,
            csat=(i % 5) + 1 if i % 2 else None,
            bot_answers=i,
            fallbacks=i % 3,
        )
    outcome(Outcome.RESOLVED_BY_BOT, base - timedelta(days=3), model_version=version)  # a span of its own
    rollup.refresh()
    kept = sorted(OutcomeHour.objects.values_list(*FIELDS))
    call_command("rebuild_report_rollup", verbosity=0)
    assert sorted(OutcomeHour.objects.values_list(*FIELDS)) == kept
    assert sum(row[-3] for row in kept) == 13
    assert rollup.refresh() == 0  # nothing left stale


FIELDS = [
    "hour",
    "outcome",
    "model_version",
    "agent",
    "handoff_reason",
    "csat",
    "conversations",
    "bot_answers",
    "fallbacks",
]


def test_stale_hours_less_than_a_day_apart_are_read_as_one_range():
    hour = datetime(2026, 3, 10, 5, tzinfo=UTC)
    hours = [hour, hour + timedelta(hours=3), hour + timedelta(days=2)]
    assert rollup.spans(hours) == [
        (hour, hour + timedelta(hours=4)),
        (hour + timedelta(days=2), hour + timedelta(days=2, hours=1)),
    ]
