"""Idle visitor sockets on one server process: memory, time to open, and
whether the memory comes back when they close.

Starts `manage.py serve` (its workers beside it) on PostgreSQL and Redis, then
opens `--sockets` visitor websockets (each authenticated, as the widget does)
and holds them while `--active` visitors send a message every second; closes
them all; and does it once more, to tell a leak (RSS grows with every cycle)
from memory the allocator keeps (it stays level). Prints the server process's
RSS before, with the sockets open and after they closed, for each cycle, the
time for all to open, the active visitors' latency, and the machine.

    python bench/idle_sockets.py --sockets 5000 --active 5
"""

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import websockets

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.chat_latency import (  # noqa: E402
    LOAD_TEST_LIMITS,
    Visitor,
    free_port,
    machine,
    percentile,
    prepare_database,
    server_env,
    start_server,
)


def raise_file_limit(wanted: int) -> int:
    """Raise this process's open-file limit (the server inherits it); returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sessions(count: int) -> list[str]:
    """Visitor tokens, made in the database directly (the HTTP endpoint is not what is measured)."""
    import django

    django.setup()
    from chatbot.conversations.services.sessions import start_session

    return [start_session(page_url="bench")[0] for _ in range(count)]


async def open_socket(url: str, origin: str, token: str, gate: asyncio.Semaphore):
    async with gate:
        ws = await websockets.connect(url, origin=origin, open_timeout=60, ping_interval=None, max_queue=4)
        await ws.send(json.dumps({"type": "auth", "token": token, "last_seq": 0}))
        while json.loads(await asyncio.wait_for(ws.recv(), timeout=60))["type"] != "history":
            pass
        return ws


async def cycle(base: str, tokens: list[str], hold: float, active: list[Visitor], in_flight: int) -> dict:
    url, gate = base.replace("http", "ws") + "/ws/chat/", asyncio.Semaphore(in_flight)
    started = time.perf_counter()
    results = await asyncio.gather(*(open_socket(url, base, t, gate) for t in tokens), return_exceptions=True)
    opened_s = time.perf_counter() - started
    sockets = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    await asyncio.sleep(2)
    row = {"opened": len(sockets), "failed": len(failed), "open_s": opened_s}
    if failed:
        row["first_failure"] = repr(failed[0])[:200]
    row["rss_open_mb"] = rss_mb(SERVER_PID)
    if active:
        await asyncio.gather(*(v.run(interval=1.0, duration=hold, grace=5) for v in active))
    else:
        await asyncio.sleep(hold)
    row["rss_held_mb"] = rss_mb(SERVER_PID)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    await asyncio.sleep(10)  # the server notices every close and leaves the groups
    row["rss_closed_mb"] = rss_mb(SERVER_PID)
    return row


SERVER_PID = 0


def main() -> None:
    global SERVER_PID
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--active", type=int, default=5, help="visitors sending a message every second meanwhile")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds the sockets stay open")
    parser.add_argument("--in-flight", type=int, default=500, help="sockets opening at once")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/chatbot_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    args = parser.parse_args()

    limit = raise_file_limit(args.sockets * 2 + 1024)
    env = server_env(args.database_url, args.redis_url, **LOAD_TEST_LIMITS)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
    (REPO / "var").mkdir(exist_ok=True)
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    prepare_database(env)
    tokens = sessions(args.sockets)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(env, port)
    SERVER_PID = server.pid
    try:
        from bench.chat_latency import wait_for_a_reply

        asyncio.run(wait_for_a_reply(base))
        rss_start = rss_mb(SERVER_PID)
        active = [Visitor(base, i) for i in range(args.active)]
        first = asyncio.run(cycle(base, tokens, args.hold, active, args.in_flight))
        second = asyncio.run(cycle(base, tokens, args.hold, [], args.in_flight))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)

    latencies = []
    lost = 0
    for visitor in active:
        by_client_id = {cid: mid for mid, cid in visitor.acked.items()}
        for client_msg_id, sent_at in visitor.sent.items():
            replies = visitor.replies.get(by_client_id.get(client_msg_id), [])
            if replies:
                latencies.append((replies[0] - sent_at) * 1000)
            else:
                lost += 1
    print(f"machine: {machine()}")
    print(f"setup: one server process (uvicorn) + its workers, PostgreSQL, Redis; open-file limit {limit}")
    print(f"server RSS before: {rss_start:.0f} MB")
    for number, row in enumerate((first, second), start=1):
        print(
            f"cycle {number}: {row['opened']} sockets open in {row['open_s']:.1f} s ({row['failed']} failed), "
            f"RSS open {row['rss_open_mb']:.0f} MB, held {row['rss_held_mb']:.0f} MB, "
            f"after close {row['rss_closed_mb']:.0f} MB ({(row['rss_closed_mb'] / rss_start - 1) * 100:+.0f} % of before)"
            + (f"; first failure: {row['first_failure']}" if row.get("first_failure") else "")
        )
    if latencies:
        print(
            f"{args.active} active visitors meanwhile: {len(latencies)} replies, lost {lost}, latency ms "
            f"p50 {percentile(latencies, 50):.1f}  p95 {percentile(latencies, 95):.1f}  max {max(latencies):.1f}"
        )


if __name__ == "__main__":
    main()
