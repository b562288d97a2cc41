"""The hourly rollup of final outcomes (OutcomeHour) that the reports read on
PostgreSQL: a 30-day range is ~30,000 summed rows instead of every conversation.

Kept exact by recomputing whole hours, never by adding and subtracting: a trigger
on the outcome table notes the UTC hour of every final outcome that is written,
changed (a handoff after it was counted moves it to `handed_off`), made not final
or deleted (StaleHour, in the same transaction as the change, whatever wrote it:
the ORM, a bulk update, a cascade). `refresh()` recomputes the noted hours from the
outcomes; the outcome task calls it after each run and a report before it reads.
`rebuild()` (`manage.py rebuild_report_rollup`) recomputes everything.

SQLite has no such trigger: there the reports read the outcomes directly.
"""

from datetime import datetime, timedelta

from django.db import connection, transaction

from chatbot.analytics.models import COUNTED

# One lock for every writer of the rollup (pg_advisory_xact_lock's two keys).
LOCK = (15, 1)

OUTCOMES = "analytics_conversationoutcome"

# Per statement, not per row: a bulk write of 10,000 outcomes notes each hour once.
TRIGGER_SQL = f"""
CREATE OR REPLACE FUNCTION analytics_note_stale_hours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO analytics_stalehour (hour)
        SELECT DISTINCT date_bin('1 hour', started_at, timestamptz '2000-01-01 00:00Z') FROM new_rows WHERE final AND started_at IS NOT NULL;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO analytics_stalehour (hour)
        SELECT DISTINCT date_bin('1 hour', started_at, timestamptz '2000-01-01 00:00Z') FROM old_rows WHERE final AND started_at IS NOT NULL;
    ELSE
        INSERT INTO analytics_stalehour (hour)
        SELECT DISTINCT date_bin('1 hour', at, timestamptz '2000-01-01 00:00Z')
        FROM old_rows o JOIN new_rows n USING (conversation_id)
        CROSS JOIN LATERAL (VALUES (CASE WHEN o.final THEN o.started_at END),
                                   (CASE WHEN n.final THEN n.started_at END)) AS changed(at)
        WHERE at IS NOT NULL
          AND (o.final, o.started_at, o.outcome, o.model_version_id, o.agent_id, o.handoff_reason, o.csat,
               o.bot_answers, o.fallbacks)
              IS DISTINCT FROM
              (n.final, n.started_at, n.outcome, n.model_version_id, n.agent_id, n.handoff_reason, n.csat,
               n.bot_answers, n.fallbacks);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER analytics_outcome_inserted AFTER INSERT ON {OUTCOMES}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_note_stale_hours();
CREATE TRIGGER analytics_outcome_updated AFTER UPDATE ON {OUTCOMES}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_note_stale_hours();
CREATE TRIGGER analytics_outcome_deleted AFTER DELETE ON {OUTCOMES}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_note_stale_hours();
"""

DROP_TRIGGER_SQL = f"""
DROP TRIGGER IF EXISTS analytics_outcome_inserted ON {OUTCOMES};
DROP TRIGGER IF EXISTS analytics_outcome_updated ON {OUTCOMES};
DROP TRIGGER IF EXISTS analytics_outcome_deleted ON {OUTCOMES};
DROP FUNCTION IF EXISTS analytics_note_stale_hours();
"""

_COUNTED = ", ".join(f"'{o.value}'" for o in COUNTED)
_COLUMNS = "hour, outcome, model_version_id, agent_id, handoff_reason, csat, conversations, bot_answers, fallbacks"
_SUMMED = f"""
SELECT date_bin('1 hour', started_at, timestamptz '2000-01-01 00:00Z'), outcome, model_version_id, agent_id, handoff_reason, csat,
       count(*), sum(bot_answers), sum(fallbacks)
FROM {{source}}
WHERE final AND outcome IN ({_COUNTED}) AND started_at IS NOT NULL {{where}}
GROUP BY 1, 2, 3, 4, 5, 6
"""


HOUR = timedelta(hours=1)
SPAN_GAP = timedelta(hours=24)


def enabled() -> bool:
    """Whether the reports read the rollup (PostgreSQL, where the trigger keeps it)."""
    return connection.vendor == "postgresql"


def _lock(cursor) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", LOCK)


def refresh() -> int:
    """Recompute the hours noted stale; returns how many. Safe to run twice or at
    once from several processes (one lock; a change committed meanwhile notes its
    hour again, so it is never lost)."""
    if not enabled():
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM analytics_stalehour LIMIT 1")
        if cursor.fetchone() is None:
            return 0
        _lock(cursor)
        cursor.execute("SELECT id, hour FROM analytics_stalehour")
        noted = cursor.fetchall()
        if not noted:
            return 0
        hours = sorted({hour for _, hour in noted})
        recompute(cursor, hours)
        cursor.execute("DELETE FROM analytics_stalehour WHERE id = ANY(%s)", [[pk for pk, _ in noted]])
    return len(hours)


def spans(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted hours as [start, end) spans, hours less than a day apart in one span:
    a run of the outcome task notes many neighbouring hours, read best as one range."""
    result: list[list[datetime]] = []
    for hour in hours:
        if result and hour - result[-1][1] < SPAN_GAP:
            result[-1][1] = hour + HOUR
        else:
            result.append([hour, hour + HOUR])
    return [(start, end) for start, end in result]


def recompute(cursor, hours: list[datetime]) -> None:
    """Replace the rollup rows of these UTC hours (and of the hours between them, when
    close) by the sums of their final outcomes."""
    starts, ends = zip(*spans(hours), strict=True)
    # The row estimates of a join on a list are poor: no JIT compiling for seconds.
    cursor.execute("SET LOCAL jit = off")
    cursor.execute("SET LOCAL work_mem = '32MB'")  # a whole range's groups hash in memory
    cursor.execute(
        "DELETE FROM analytics_outcomehour o USING unnest(%s::timestamptz[], %s::timestamptz[]) AS span(a, b) "
        "WHERE o.hour >= span.a AND o.hour < span.b",
        [list(starts), list(ends)],
    )
    source = f"unnest(%s::timestamptz[], %s::timestamptz[]) AS span(a, b) JOIN {OUTCOMES} ON true"
    where = "AND started_at >= span.a AND started_at < span.b"
    cursor.execute(
        f"INSERT INTO analytics_outcomehour ({_COLUMNS}) " + _SUMMED.format(source=source, where=where),
        [list(starts), list(ends)],
    )


def rebuild() -> int:
    """Recompute the whole rollup from the final outcomes; returns its row count."""
    if not enabled():
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor)
        cursor.execute("SELECT id FROM analytics_stalehour")
        noted = [pk for (pk,) in cursor.fetchall()]
        cursor.execute("DELETE FROM analytics_outcomehour")
        cursor.execute(f"INSERT INTO analytics_outcomehour ({_COLUMNS}) " + _SUMMED.format(source=OUTCOMES, where=""))
        rows = cursor.rowcount
        cursor.execute("DELETE FROM analytics_stalehour WHERE id = ANY(%s)", [noted])
    return rows
