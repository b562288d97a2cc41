"""The REST API and webhooks at scale, on PostgreSQL and Redis.

1. Conversation list: seeds 200,000 conversations (once) and pages through them
   100 at a time, newest first (following cursors from the start, jumping to
   random depths, and with status, agent and date-range filters). Prints the
   server time (the Server-Timing header: the request in Django, routing,
   auth, rate limit, query and JSON) and the wall time of the whole in-process
   call (the call-log insert included), p50/p95/p99. Goal: p95 <= 50 ms.
2. Webhook fan-out: 1,000 events to a receiver on 127.0.0.1 through a real
   Celery worker process (the production setting: default queue, 4 threads),
   the receiver failing a share of requests with 500 so retries are exercised.
   Prints events a second and checks that every event arrived (by event id).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt_api REDIS_URL=redis://127.0.0.1:6379/5 \\
        python bench/api.py [--pages 2000] [--events 1000] [--fail-rate 0.1]
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Deliveries to the local receiver: allowed for this run only, retried quickly.
BENCH_ENV = {
    "DEBUG": "1",
    "WEBHOOK_ALLOW_PRIVATE_URLS": "1",
    "WEBHOOK_RETRY_BASE_S": "0.5",
    "WEBHOOK_RETRY_MAX_DELAY_S": "5",
    "API_RATE_LIMIT": "1000000/m",
    "LOG_LEVEL": "WARNING",
}
os.environ.update(BENCH_ENV)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from bench.machine import cpu_model, load_average  # noqa: E402

TARGET = 200_000


def percentiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49]:6.2f}  p95 {q[94]:6.2f}  p99 {q[98]:6.2f}  max {max(values):6.2f} ms  (n={len(values)})"


# --- 1. The conversation list -------------------------------------------------------


def seed(total: int) -> None:
    from django.contrib.auth import get_user_model

    from chatbot.conversations.models import Conversation, Visitor

    have = Conversation.objects.count()
    if have >= total:
        print(f"{have} conversations already in the database")
        _vacuum()
        return
    users = get_user_model()
    agents = [users.objects.get_or_create(username=f"bench-agent-{i}")[0] for i in range(20)]
    print(f"seeding {total - have} conversations...", flush=True)
    started = time.perf_counter()
    statuses = ["bot"] * 6 + ["closed"] * 3 + ["waiting_for_agent", "with_agent"]
    batch = 10_000
    for start in range(have, total, batch):
        n = min(batch, total - start)
        visitors = Visitor.objects.bulk_create(
            [Visitor(token_hash=f"bench-{start + i}-{random.random()}") for i in range(n // 2)]
        )
        rows = []
        for i in range(n):
            status = random.choice(statuses)
            agent = random.choice(agents) if status in ("with_agent", "closed") else None
            rows.append(Conversation(visitor=visitors[i % len(visitors)], status=status, assigned_agent=agent))
        Conversation.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        # Spread over half a year (auto_now_add gave them all one time).
        cursor.execute(
            "UPDATE conversations_conversation SET created_at = now() - random() * interval '180 days' "
            "WHERE created_at > now() - interval '1 hour'"
        )
    _vacuum()
    print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)


def _vacuum() -> None:
    # The seeding UPDATE leaves a dead row version per conversation (and the tests'
    # runs leave more): clean them out, as autovacuum would before long.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE conversations_conversation")


def bench_list(pages: int) -> dict[str, list[float]]:
    from django.contrib.auth import get_user_model

    from chatbot.api import tokens
    from chatbot.api.endpoints.conversations import _encode_cursor
    from chatbot.conversations.models import Conversation

    user, _ = get_user_model().objects.get_or_create(username="bench-api")
    _, token = tokens.create_token(name="bench", user=user, scopes=["read"])
    client = Client(SERVER_NAME="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
    server: dict[str, list[float]] = {}
    wall: dict[str, list[float]] = {}

    def get(kind: str, params: dict) -> dict:
        started = time.perf_counter()
        response = client.get("/api/v1/conversations", params)
        wall.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content
        server.setdefault(kind, []).append(float(response["Server-Timing"].split("dur=")[1]))
        return response.json()

    for _ in range(20):  # warm the pool, caches and query plans
        get("warm-up", {})
    # Following cursors from the newest, restarting every 100 pages.
    cursor = None
    for i in range(pages):
        body = get("walk", {"cursor": cursor} if cursor else {})
        assert len(body["items"]) == 100
        cursor = None if i % 100 == 99 else body["next_cursor"]
    # Straight to a random depth (a cursor made from a random conversation).
    sample = list(Conversation.objects.order_by("?").values_list("created_at", "id")[: pages // 4])
    for created_at, pk in sample:
        get("random depth", {"cursor": _encode_cursor(created_at, pk)})
    agent_ids = list(get_user_model().objects.filter(username__startswith="bench-agent").values_list("pk", flat=True))
    for _ in range(pages // 4):
        get("status filter", {"status": random.choice(["bot", "closed", "waiting_for_agent", "with_agent"])})
        get("agent filter", {"assigned_agent": random.choice(agent_ids)})
        days = random.randint(1, 170)
        get(
            "date range",
            {
                "created_after": "2000-01-01T00:00:00Z" if days > 160 else _days_ago(days + 7),
                "created_before": _days_ago(days),
            },
        )
    server.pop("warm-up")
    wall.pop("warm-up")
    return {"server": server, "wall": wall}


def _days_ago(days: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


# --- 2. Webhook fan-out -----------------------------------------------------------------


class Receiver:
    def __init__(self, fail_rate: float) -> None:
        self.ids: list[str] = []
        self.failed = 0
        self.lock = threading.Lock()
        self.last_at = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fail = random.random() < fail_rate
                with receiver.lock:
                    if fail:
                        receiver.failed += 1
                    else:
                        receiver.ids.append(json.loads(body)["id"])
                        receiver.last_at = time.perf_counter()
                self.send_response(500 if fail else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def bench_webhooks(events: int, fail_rate: float, timeout: float, concurrency: int) -> None:
    import redis

    from chatbot.webhooks import services
    from chatbot.webhooks.models import Delivery, Event, EventType, Subscription

    redis.Redis.from_url(settings.REDIS_URL).delete("default")  # no tasks left from an earlier run
    Subscription.objects.filter(name="bench").delete()
    receiver = Receiver(fail_rate)
    subscription = Subscription.objects.create(name="bench", url=receiver.url, events=[EventType.MESSAGE_CREATED])
    env = {**os.environ, **BENCH_ENV}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "chatbot", "worker", "-Q", "default", "--pool", "threads",
         "--concurrency", str(concurrency), "--loglevel", "WARNING", "--without-mingle", "--without-gossip"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(4)  # the worker connects
        started = time.perf_counter()
        emitted = []
        for i in range(events):
            event = services.emit(EventType.MESSAGE_CREATED, {"conversation_id": "bench", "message": {"seq": i}})
            emitted.append(str(event.id))
        emit_s = time.perf_counter() - started
        deadline = time.monotonic() + timeout
        while len(set(receiver.ids)) < events and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = receiver.last_at - started
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    got = set(receiver.ids)
    lost = set(emitted) - got
    deliveries = Delivery.objects.filter(subscription=subscription)
    attempts = sum(deliveries.values_list("attempts", flat=True))
    print(
        f"webhook fan-out: {events} events to a local receiver failing {fail_rate:.0%} of requests with 500, "
        f"one worker process with {concurrency} threads"
    )
    print(f"  recorded {events} events in {emit_s:.2f} s ({events / emit_s:.0f}/s)")
    print(f"  delivered {len(got)}/{events} in {elapsed:.2f} s: {len(got) / elapsed:.0f} events/s")
    print(f"  lost {len(lost)}, received twice {len(receiver.ids) - len(got)}, answered 500: {receiver.failed}")
    print(f"  attempts {attempts} ({attempts / events:.2f} per event); "
          f"succeeded {deliveries.filter(status=Delivery.Status.SUCCEEDED).count()}")  # fmt: skip
    Event.objects.filter(deliveries__subscription=subscription).delete()
    subscription.delete()
    if lost:
        raise SystemExit(f"{len(lost)} events lost")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=TARGET)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--fail-rate", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--concurrency", type=int, default=4, help="worker threads (production: 4)")
    parser.add_argument("--skip-list", action="store_true")
    parser.add_argument("--skip-webhooks", action="store_true")
    args = parser.parse_args()
    if connection.vendor != "postgresql" or settings.EMBEDDED:
        raise SystemExit("Set DATABASE_URL to PostgreSQL and REDIS_URL: this measures the production setup.")
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {cpu_model()}, {cores} cores; PostgreSQL {pg}; load average {load_average()}")
    if not args.skip_list:
        seed(args.conversations)
        results = bench_list(args.pages)
        print(f"conversation list, pages of 100 over {args.conversations:,} conversations "
              f"(call log {'on' if settings.API_CALL_LOG else 'off'}):")  # fmt: skip
        for measure in ("server", "wall"):
            everything = [v for values in results[measure].values() for v in values]
            print(f"  {measure} time, all calls   {percentiles(everything)}")
            for kind, values in results[measure].items():
                print(f"    {kind:<18} {percentiles(values)}")
    if not args.skip_webhooks:
        bench_webhooks(args.events, args.fail_rate, args.timeout, args.concurrency)


if __name__ == "__main__":
    main()
