"""Visitor-message-to-bot-reply latency on the real stack.

Starts the product as it runs in production on this machine (`manage.py serve`
with its worker processes, PostgreSQL, Redis), then N visitors over real
websockets each send a message every `--interval` seconds for `--duration`
seconds. Prints p50/p95/p99 latency, replies per second, lost and duplicated
replies, and the machine.

    python bench/chat_latency.py --visitors 50 --interval 2 --duration 60
    python bench/chat_latency.py --visitors 50 --held 10   # 10 of them with an agent (suggestions)
    python bench/chat_latency.py --visitors 200 --rates 50,100,150,200 --duration 30
        # the same visitors at each total rate (messages per second) in turn, and the
        # highest rate whose p95 stays within --p95-goal ms
    python bench/chat_latency.py --visitors 50 --knowledge  # help-center answers on (issue 16)
"""

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import websockets

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine import cpu_model  # noqa: E402  (the repository is on the path only now)

# Questions the bot answers: a request for a person would hand the conversation to
# agents, and the bot rightly stays quiet while the visitor waits (its later messages
# would count as lost).
UTTERANCES = [
    "where is my order?",
    "hi there",
    "how do I return a lamp?",
    "how long does shipping to the US take?",
    "can I pay with paypal?",
    "my package arrived damaged",
    "I forgot my password",
    "do you sell gift cards?",
    "thanks, that helps",
    "what is your warranty on furniture?",
]


# With --knowledge, half the messages are these: no intent answers them, so the bot asks
# the knowledge index (answered from an article, or abstained and fell back).
KNOWLEDGE_UTTERANCES = [
    "how do I clean the cutting board",
    "do you price match if it gets cheaper",
    "can i get an invoice with my company name",
    "my discount code says expired",
    "the parcel says delivered but nothing here",
    "can i change the size after ordering",
    "how do i unsubscribe from the newsletter",
    "is my payment info stored safely",
    "are you hiring",
    "do you have a loyalty program",
]


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The benchmarks' visitors send faster than a person may, and all come from 127.0.0.1:
# the per-address limits would refuse them as one abuser (bench/abuse.py measures those).
LOAD_TEST_LIMITS = {
    "RATE_LIMIT_MESSAGES": "1000",
    "SESSION_RATE_PER_IP": "100000/m",
    "WS_RATE_PER_IP": "1000000/m",
    "WS_MESSAGE_RATE_PER_IP": "1000000/m",
}


def server_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a benchmark's `serve`: production settings (DEBUG off, so
    Django keeps no queries) on plain HTTP over loopback, on the given services."""
    return {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "0",  # no TLS proxy in front
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        # Per database: each pins the checksums of the models it trained, and another
        # database's bootstrap would overwrite them under the same directory.
        "MODEL_DIR": str(REPO / "var" / "bench-models" / database_url.rsplit("/", 1)[1]),
        "LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def prepare_database(env: dict) -> None:
    import psycopg

    name = env["DATABASE_URL"].rsplit("/", 1)[1]
    admin_url = env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    for command in (["migrate", "--noinput", "-v0"], ["bootstrap_demo"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True)


def start_server(env: dict, port: int, within: float = 300) -> subprocess.Popen:
    log = (REPO / "var" / "bench-server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + within  # the workers load their models before they count (minutes on a starved box)
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the server did not become healthy; see var/bench-server.log")


class Visitor:
    def __init__(
        self, base: str, index: int, take_over=None, address: str | None = None, utterances: list[str] = UTTERANCES
    ) -> None:
        self.base = base
        self.utterances = utterances
        self.index = index
        self.take_over = take_over  # held visitors: an agent takes the conversation first
        # The client address the server sees (bench/abuse.py): sent as X-Forwarded-For, which
        # uvicorn believes from 127.0.0.1 as from the reverse proxy.
        self.headers = {"X-Forwarded-For": address} if address else {}
        self.sent: dict[str, float] = {}  # client_msg_id -> send time
        self.acked: dict[int, str] = {}  # visitor message id -> client_msg_id
        self.replies: dict[int, list[float]] = {}  # visitor message id -> reply arrival times
        self.sources: dict[str, int] = {}  # answer source of the bot's replies -> count

    async def run(self, interval: float, duration: float, grace: float) -> None:
        request = urllib.request.Request(
            self.base + "/api/widget/sessions", data=b"{}", method="POST", headers=self.headers
        )
        session = await asyncio.to_thread(lambda: json.load(urllib.request.urlopen(request)))
        token = session["token"]
        if self.take_over is not None:
            await asyncio.to_thread(self.take_over, session["conversation_id"])
        url = self.base.replace("http", "ws") + "/ws/chat/"
        async with websockets.connect(url, origin=self.base, additional_headers=self.headers) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token, "last_seq": 0}))
            receiver = asyncio.create_task(self.receive(ws))
            await asyncio.sleep(random.uniform(0, interval))  # spread the visitors out
            utterances = itertools.cycle(random.sample(self.utterances, len(self.utterances)))
            end = time.monotonic() + duration
            while time.monotonic() < end:
                client_msg_id = str(uuid.uuid4())
                self.sent[client_msg_id] = time.perf_counter()
                await ws.send(
                    json.dumps({"type": "user_message", "text": next(utterances), "client_msg_id": client_msg_id})
                )
                await asyncio.sleep(interval)
            await asyncio.sleep(grace)
            receiver.cancel()

    async def receive(self, ws) -> None:
        async for raw in ws:
            now = time.perf_counter()
            frame = json.loads(raw)
            if frame["type"] == "ack":
                self.acked[frame["message_id"]] = frame["client_msg_id"]
            elif frame["type"] == "message" and frame["sender"] == "bot" and frame.get("reply_to"):
                self.replies.setdefault(frame["reply_to"], []).append(now)
                source = frame.get("source") or "none"
                self.sources[source] = self.sources.get(source, 0) + 1
            elif frame["type"] == "error":
                print(f"visitor {self.index}: error {frame['code']}", file=sys.stderr)


async def wait_for_a_reply(base: str, within: float = 120) -> None:
    visitor = Visitor(base, -1)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        await visitor.run(interval=1, duration=1, grace=2)
        if visitor.replies:
            return
    raise SystemExit("the workers did not answer within 120 s; see var/bench-server.log")


async def load(
    base: str, visitors: int, interval: float, duration: float, grace: float, take_over=None, held=0, knowledge=False
):
    crowd = [Visitor(base, i, take_over if i < held else None) for i in range(visitors)]
    if knowledge:
        for visitor in crowd:
            visitor.utterances = UTTERANCES + KNOWLEDGE_UTTERANCES
    await asyncio.gather(*(v.run(interval, duration, grace) for v in crowd))
    return crowd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=50)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between one visitor's messages")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to wait for late replies")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/chatbot_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument(
        "--held",
        type=int,
        default=0,
        help="of the visitors, this many are taken over by an agent at once: the bot stays silent, the "
        "inference workers make reply suggestions for each of their messages, and the latency of the "
        "others' bot replies shows what that costs",
    )
    parser.add_argument("--rates", default="", help="comma list of total messages per second to step through")
    parser.add_argument("--p95-goal", type=float, default=250.0, help="with --rates: the p95 (ms) a rate must keep")
    parser.add_argument(
        "--knowledge",
        action="store_true",
        help="build and activate the demo help center's knowledge index first, and let half the messages be "
        "questions no intent answers (the bot asks the index); use a database of its own",
    )
    args = parser.parse_args()

    # The index is built once below (--knowledge), not during the run.
    env = server_env(args.database_url, args.redis_url, **LOAD_TEST_LIMITS, KNOWLEDGE_AUTO_REBUILD="0")
    (REPO / "var").mkdir(exist_ok=True)
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    prepare_database(env)
    if args.knowledge:
        build_knowledge_index(env)
    take_over = agent_taking_over(env) if args.held else None
    port = free_port()
    server = start_server(env, port)
    try:
        # Wait until the workers answer, so the run measures a warm system.
        asyncio.run(wait_for_a_reply(f"http://127.0.0.1:{port}"))
        rates = [float(r) for r in args.rates.split(",") if r] or [args.visitors / args.interval]
        runs = []
        for rate in rates:
            interval = args.visitors / rate
            started = time.perf_counter()
            crowd = asyncio.run(
                load(
                    f"http://127.0.0.1:{port}",
                    args.visitors,
                    interval,
                    args.duration,
                    args.grace,
                    take_over,
                    args.held,
                    args.knowledge,
                )
            )
            runs.append((rate, interval, crowd, time.perf_counter() - started - args.grace))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)

    print(f"machine: {machine()}")
    sustained = []
    for rate, interval, crowd, elapsed in runs:
        print(
            f"setup: {args.visitors} visitors, one message every {interval:g} s each ({rate:g} msg/s), "
            f"{args.duration:g} s, uvicorn + Celery workers (inference: threads pool, micro-batched), Redis, PostgreSQL"
            + (
                f"; {args.held} of the visitors held by an agent (no bot replies, suggestions instead)"
                if args.held
                else ""
            )
        )
        p95 = report(crowd[args.held :], elapsed)
        if p95 is not None and p95 <= args.p95_goal:
            sustained.append(rate)
        if args.held:
            report_suggestions(crowd[: args.held])
    if args.rates:
        best = f"{max(sustained):g} msg/s" if sustained else "none of the rates tried"
        print(f"highest rate with p95 <= {args.p95_goal:g} ms: {best}; machine at the end: {machine()}")


def report(crowd: list[Visitor], elapsed: float) -> float | None:
    """Print sent, lost, duplicated and the latency percentiles; returns the p95 (ms)."""
    latencies, lost, duplicated, sent = reply_latencies(crowd)
    print(f"messages sent: {sent}, replies: {len(latencies)}, lost: {lost}, duplicated: {duplicated}")
    if not latencies:
        return None
    p95 = percentile(latencies, 95)
    print(
        f"latency ms: p50 {percentile(latencies, 50):.1f}  p95 {p95:.1f}  "
        f"p99 {percentile(latencies, 99):.1f}  mean {statistics.mean(latencies):.1f}  max {max(latencies):.1f}"
    )
    print(f"replies per second: {len(latencies) / elapsed:.1f}")
    sources: dict[str, int] = {}
    for visitor in crowd:
        for source, n in visitor.sources.items():
            sources[source] = sources.get(source, 0) + n
    print("bot replies by source: " + ", ".join(f"{k} {v}" for k, v in sorted(sources.items())))
    return p95


def reply_latencies(crowd: list[Visitor]) -> tuple[list[float], int, int, int]:
    """(reply latencies in ms, lost, duplicated, sent) over the crowd's messages."""
    latencies, lost, duplicated, sent = [], 0, 0, 0
    for visitor in crowd:
        sent += len(visitor.sent)
        by_client_id = {cid: mid for mid, cid in visitor.acked.items()}
        for client_msg_id, sent_at in visitor.sent.items():
            replies = visitor.replies.get(by_client_id.get(client_msg_id), [])
            if not replies:
                lost += 1
                continue
            duplicated += len(replies) - 1
            latencies.append((replies[0] - sent_at) * 1000)
    return latencies, lost, duplicated, sent


def build_knowledge_index(env: dict) -> None:
    """Build and activate a knowledge index of the demo help center (bootstrap_demo
    imported it) unless one is active, as the training worker would."""
    code = (
        "from chatbot.knowledge import indexing\n"
        "from chatbot.knowledge.models import KnowledgeIndexVersion\n"
        "if not KnowledgeIndexVersion.objects.filter(is_active=True).exists():\n"
        "    v = indexing.knowledge_indexes.request(activate_when_ready=True)\n"
        "    v = indexing.knowledge_indexes.run(v.pk)\n"
        "    assert v.is_active, v.error\n"
        "print('knowledge index', KnowledgeIndexVersion.objects.get(is_active=True).index_id)\n"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO, env=env, check=True)


def agent_taking_over(env: dict):
    """Django in this process, on the bench's database and broker: a function that lets
    a bench agent take a conversation over, as the dashboard's button does."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from chatbot.agents import services as agents

    agent, _ = get_user_model().objects.get_or_create(username="bench-agent", defaults={"first_name": "Bench"})
    return lambda conversation_id: agents.take_over(conversation_id, agent)


def report_suggestions(held: list[Visitor]) -> None:
    """How many of the held visitors' messages got suggestions, and how long after the message."""
    from chatbot.replies.models import SuggestionEvent

    ids = [message_id for visitor in held for message_id in visitor.acked]
    events = SuggestionEvent.objects.filter(message_id__in=ids).select_related("message")
    delays = [(e.created_at - e.message.created_at).total_seconds() * 1000 for e in events]
    line = f"held by an agent: {len(held)} visitors, {len(ids)} messages, {len(delays)} with suggestions"
    if delays:
        line += f"; suggestion ms after the message: p50 {percentile(delays, 50):.1f}  p95 {percentile(delays, 95):.1f}"
    print(line)


if __name__ == "__main__":
    main()
