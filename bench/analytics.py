"""Reports speed on PostgreSQL: every report page, chart and CSV for a 30-day range,
and the outcome task finalising 10,000 idle conversations.

Seeds the database named by DATABASE_URL with `seed_analytics` first when it holds
fewer conversations than asked (1,000,000 messages in 200,000 conversations by
default), then times each URL in-process (Django's test client: server time, no
network), prints p50/p95 per URL, the task's time, EXPLAIN ANALYZE of the slowest
query, and the machine. Writes test-artifacts/analytics-bench.txt too.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt_analytics python bench/analytics.py
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
os.environ.setdefault("DEBUG", "1")
# One connection for the whole run (the niceness applies to its backend).
os.environ.setdefault("DATABASE_POOL_MAX_SIZE", "0")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.machine import describe  # noqa: E402

OUT = REPO / "test-artifacts" / "analytics-bench.txt"


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=90, help="history spread over this many days")
    parser.add_argument("--runs", type=int, default=20, help="timed requests per URL")
    parser.add_argument("--idle", type=int, default=10_000, help="idle conversations the outcome task finalises")
    parser.add_argument("--task-only", action="store_true", help="time only the outcome task")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="on a shared machine (as root): run this process and its PostgreSQL backend at this niceness, "
        "e.g. -10, so other jobs' load disturbs the timings less",
    )
    args = parser.parse_args()
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database: the figures are for PostgreSQL.")
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    from chatbot.analytics.models import ConversationOutcome
    from chatbot.conversations.models import Conversation, Message

    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            os.setpriority(os.PRIO_PROCESS, cursor.fetchone()[0], args.nice)
    call_command("migrate", verbosity=0)
    if Conversation.objects.count() < args.conversations:
        started = time.perf_counter()
        call_command("seed_analytics", conversations=args.conversations - Conversation.objects.count(), days=args.days)
        say(f"seeded in {time.perf_counter() - started:.0f} s")
    with connection.cursor() as cursor:
        # What autovacuum does in production: statistics, and the visibility map that
        # lets the reports' covering indexes answer without reading the tables.
        cursor.execute("VACUUM ANALYZE")
    say(f"machine: {describe()}")
    if args.nice:
        say(f"this process and its PostgreSQL backend at niceness {args.nice} (the machine is shared)")
    say(
        f"data: {Conversation.objects.count():,} conversations, {Message.objects.count():,} messages, "
        f"{ConversationOutcome.objects.filter(final=True).count():,} final outcomes; PostgreSQL "
        f"{connection.cursor().connection.info.server_version}"
    )

    if not args.task_only:
        time_reports(args, say)
    time_outcome_task(args, say)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")


def time_reports(args, say) -> None:
    # --- Reports, 30 days -------------------------------------------------------
    from django.contrib.auth import get_user_model

    from chatbot.analytics import charts, reports

    User = get_user_model()
    boss, _ = User.objects.get_or_create(username="bench-supervisor", defaults={"is_superuser": True, "is_staff": True})
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(boss)
    period = reports.Period.parse(None, None)
    query = f"?start={period.start}&end={period.end}"
    urls = ["/agent/reports/", "/agent/reports/unanswered/"]
    urls += [f"/agent/reports/charts/{name}.svg" for name in charts.CHARTS]
    urls += [f"/agent/reports/export/{name}.csv" for name in [*reports.TABLES, "unanswered"]]
    say(f"\nreports for {period.start} to {period.end} ({period.days} days), {args.runs} runs each after one warm-up;")
    say("cold: the report cache emptied before every request (a first view after the outcomes changed);")
    say("kept: the page or chart as kept until the outcomes change (pages and charts; CSV is always computed)")
    say(f"{'url':44} {'cold p50':>9} {'cold p95':>9} {'cold max':>9} {'kept p95':>9}")
    worst = (0.0, "")
    for url in urls:
        response = client.get(url + query)  # warm-up: imports, the encoder, matplotlib's font cache
        assert response.status_code == 200, (url, response.status_code)
        cold, kept = [], []
        for _ in range(args.runs):
            cache.clear()
            started = time.perf_counter()
            client.get(url + query)
            cold.append(1000 * (time.perf_counter() - started))
        for _ in range(args.runs):
            started = time.perf_counter()
            client.get(url + query)
            kept.append(1000 * (time.perf_counter() - started))
        say(f"{url:44} {statistics.median(cold):9.1f} {p95(cold):9.1f} {max(cold):9.1f} {p95(kept):9.1f}")
        worst = max(worst, (p95(cold), url))
    say(f"slowest cold p95: {worst[1]} {worst[0]:.1f} ms (target <= 500 ms)")

    # --- The slowest query of the slowest page -------------------------------------
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        client.get(worst[1] + query)
    slowest = max(captured.captured_queries, key=lambda q: float(q["time"]))
    say(f"\nslowest query of {worst[1]} ({float(slowest['time']) * 1000:.1f} ms):\n{slowest['sql']}")
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '32MB'")  # as the reports run it (reports.Snapshot.hourly)
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"])
        say("\n".join(row[0] for row in cursor.fetchall()))
    reset_queries()


def time_outcome_task(args, say) -> None:
    from chatbot.analytics.models import ConversationOutcome
    from chatbot.analytics.tasks import finalise_outcomes
    from chatbot.conversations.models import Conversation

    now = timezone.now()
    idle = list(
        ConversationOutcome.objects.filter(
            final=True,
            conversation__status=Conversation.Status.BOT,
            conversation__updated_at__lt=now - timedelta(hours=settings.ANALYTICS_IDLE_WINDOW_H),
        ).values_list("pk", flat=True)[: args.idle]
    )
    ConversationOutcome.objects.filter(pk__in=idle).delete()
    started = time.perf_counter()
    stored = finalise_outcomes()
    elapsed = time.perf_counter() - started
    say(f"\noutcome task: finalised {stored:,} idle conversations in {elapsed:.2f} s (target: 10,000 in <= 10 s)")


if __name__ == "__main__":
    main()
