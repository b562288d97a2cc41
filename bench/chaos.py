"""The fault table: every acked visitor message answered exactly once under
worker, PostgreSQL, Redis and server faults, with counts.

Starts its own PostgreSQL cluster (initdb/pg_ctl) and redis-server on spare
ports of 127.0.0.1 (never this machine's own services), a TCP proxy between
the stack and Redis that it can pull out (tests/faults/conftest.py RedisPlug),
and `manage.py serve` with its supervised workers; visitors on real websockets
send a message every `--interval` seconds, behaving as the widget does (resend
un-acked messages after a reconnect, `resume` on a gap); one fault per phase:

    worker_kill_mid_task   SIGKILL of the inference worker while it holds a task
    worker_kill_idle       SIGKILL of the inference worker between tasks
    postgres_restart       pg_ctl restart -m fast
    redis_restart_empty    redis-server killed, started again empty 3 s later
    redis_down_at_publish  Redis unreachable (3 s) from the moment a reply task is
                           published, i.e. after the visitor message's commit
    server_kill            SIGKILL of `serve` (its workers die with it), started again

Prints, per fault: sent, acked, answered, lost, duplicated, whether /healthz
said 503 while degraded and 200 after, the time until the stack was back
(/healthz's database, broker, channel layer and workers fine again) and the
recovery time (fault to the last acked message answered), then the machine.

    python bench/chaos.py --visitors 20 --interval 2
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

UTTERANCES = ["where is my order?", "hi there", "how do I send an item back?", "how long does shipping take?"]
FAULTS = (
    "worker_kill_mid_task",
    "worker_kill_idle",
    "postgres_restart",
    "redis_restart_empty",
    "redis_down_at_publish",
    "server_kill",
)


class Visitor(threading.Thread):
    """One visitor on a websocket, as the widget behaves."""

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.sending = threading.Event()
        self.stopped = threading.Event()
        self.token = None
        self.sent: dict[str, str] = {}  # client_msg_id -> text
        self.unacked: dict[str, str] = {}
        self.acked: dict[str, int] = {}  # client_msg_id -> message_id
        self.acked_at: dict[int, float] = {}
        self.replies: dict[int, set[int]] = {}  # visitor message_id -> seqs of bot replies
        self.answered_at: dict[int, float] = {}
        self.seqs: dict[int, tuple] = {}
        self.reconnects = 0
        self.lock = threading.Lock()

    def _session(self) -> str:
        request = urllib.request.Request(self.url + "/api/widget/sessions", data=b"{}", method="POST")
        return json.load(urllib.request.urlopen(request, timeout=10))["token"]

    def run(self) -> None:
        backoff = 0.2
        next_send = time.monotonic()
        while not self.stopped.is_set():
            try:
                if self.token is None:
                    self.token = self._session()
                with connect(
                    self.url.replace("http", "ws") + "/ws/chat/", origin=self.url, open_timeout=5, close_timeout=1
                ) as ws:
                    ws.send(json.dumps({"type": "auth", "token": self.token, "last_seq": 0}))
                    for client_msg_id, text in list(self.unacked.items()):
                        ws.send(json.dumps({"type": "user_message", "text": text, "client_msg_id": client_msg_id}))
                    while not self.stopped.is_set():
                        if self.sending.is_set() and time.monotonic() >= next_send:
                            next_send = time.monotonic() + self.interval
                            client_msg_id = str(uuid.uuid4())
                            text = UTTERANCES[len(self.sent) % len(UTTERANCES)]
                            self.sent[client_msg_id] = self.unacked[client_msg_id] = text
                            ws.send(json.dumps({"type": "user_message", "text": text, "client_msg_id": client_msg_id}))
                        try:
                            frame = json.loads(ws.recv(timeout=0.1))
                        except TimeoutError:
                            continue
                        if self._handle(ws, frame) == "reconnect":
                            break
                        backoff = 0.2
            except (ConnectionClosed, OSError, urllib.error.URLError, ValueError):
                pass
            self.reconnects += 1
            self.stopped.wait(backoff)
            backoff = min(backoff * 2, 3)

    def _handle(self, ws, frame: dict) -> str | None:
        kind = frame.get("type")
        if kind == "ack":
            with self.lock:
                self.unacked.pop(frame["client_msg_id"], None)
                if frame["client_msg_id"] not in self.acked:
                    self.acked[frame["client_msg_id"]] = frame["message_id"]
                    self.acked_at[frame["message_id"]] = time.monotonic()
            self._note(ws, {"seq": frame["seq"], "sender": "visitor", "message_id": frame["message_id"]})
        elif kind == "message":
            self._note(ws, frame)
        elif kind == "history":
            for message in frame["messages"]:
                self._note(None, message)
        elif kind == "error" and frame.get("code") == "unavailable":
            return "reconnect"  # resend after a reconnect, as the widget does
        return None

    def _note(self, ws, message: dict) -> None:
        with self.lock:
            if ws is not None and message["seq"] > max(self.seqs, default=0) + 1:
                ws.send(json.dumps({"type": "resume", "after_seq": 0}))
            self.seqs[message["seq"]] = (message["sender"], message.get("message_id"))
            if message["sender"] == "bot" and message.get("reply_to"):
                self.replies.setdefault(message["reply_to"], set()).add(message["seq"])
                self.answered_at.setdefault(message["reply_to"], time.monotonic())

    def counts(self) -> dict:
        with self.lock:
            acked = set(self.acked.values())
            return {
                "sent": len(self.sent),
                "acked": len(acked),
                "answered": sum(1 for m in acked if self.replies.get(m)),
                "duplicated": sum(1 for m in acked if len(self.replies.get(m, ())) > 1),
                "last_answer": max((self.answered_at[m] for m in acked if m in self.answered_at), default=0.0),
            }


def healthz(url: str) -> int:
    try:
        return urllib.request.urlopen(url + "/healthz", timeout=5).status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def health(url: str) -> tuple[int, dict]:
    """(status, the checks) of /healthz; (0, {}) when it does not answer."""
    try:
        response = urllib.request.urlopen(url + "/healthz", timeout=5)
        return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read())
        except ValueError:
            return error.code, {}
    except (OSError, ValueError):
        return 0, {}


def healthz_body(url: str) -> str:
    try:
        return urllib.request.urlopen(url + "/healthz", timeout=5).read().decode()
    except urllib.error.HTTPError as error:
        return error.read().decode()
    except OSError as error:
        return str(error)


def prepare_database(env: dict, model_dir: Path) -> None:
    """Migrate, import the demo intents and activate the given trained model."""
    import subprocess

    full = {**os.environ, **env}
    # One Django start for all of it (each costs seconds on a loaded machine).
    script = (
        "from django.core.management import call_command; call_command('migrate', interactive=False, verbosity=0);"
        "from chatbot.nlu import services; from chatbot.nlu.models import ModelVersion;"
        "services.import_intents_yaml('chatbot/nlu/demo/store_intents.yml', source='demo');"
        f"ModelVersion.objects.create(status='ready', artifact_dir={str(model_dir)!r}, is_active=True, model_id='chaos')"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=REPO, env=full, check=True)


class HealthWatch(threading.Thread):
    """Polls /healthz through a phase: was it 503 at some point after the fault,
    and since when has the stack been back (every check but `unanswered` fine)."""

    def __init__(self, stack: "Stack") -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.stopped = threading.Event()
        self.fault_at: float | None = None
        self.saw_503 = False
        self.back_at: float | None = None  # the first fine answer after the last bad one

    def run(self) -> None:
        while not self.stopped.is_set():
            status, checks = health(self.stack.serve.url)
            if self.fault_at is not None:
                self.saw_503 = self.saw_503 or status == 503
                fine = bool(checks) and all(
                    v["ok"] for k, v in checks.items() if isinstance(v, dict) and k != "unanswered"
                )
                if not fine:
                    self.back_at = None
                elif self.back_at is None:
                    self.back_at = time.monotonic()
            self.stopped.wait(0.1)

    def fault(self) -> None:
        self.fault_at = time.monotonic()


class Stack:
    """PostgreSQL, Redis (behind a plug) and `serve`, all started here."""

    def __init__(self, directory: Path, model_dir: Path, postgres, redis, serve_class, plug_class) -> None:
        self.directory, self.postgres, self.redis, self.serve_class = directory, postgres, redis, serve_class
        self.plug = plug_class(redis.port)
        self.orphaned: set[bytes] = set()
        self.env = {
            "REDIS_URL": self.plug.url,
            "DATABASE_URL": postgres.url,
            "CELERY_BEAT_SCHEDULE_FILENAME": str(directory / "beat-schedule"),
            "MODEL_DIR": str(directory / "models"),
            "REPLY_RECOVERY_AFTER_S": "3",
            "REPLY_RECOVERY_INTERVAL_S": "1",
            "WORKER_HEARTBEAT_S": "1",
            "HEALTH_UNANSWERED_MAX_AGE_S": "10",
            "RATE_LIMIT_MESSAGES": "1000",
            "LOG_LEVEL": "WARNING",
        }
        started = time.monotonic()
        prepare_database(self.env, model_dir)
        self.timings = {"database_prepared_s": round(time.monotonic() - started, 1)}
        self.serve = serve_class(directory, self.env)
        self.timings["server_answers_s"] = round(time.monotonic() - started, 1)
        self.port = self.serve.port

    def wait_healthy(self, within: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < within:
            if healthz(self.serve.url) == 200:
                return time.monotonic() - started
            time.sleep(0.2)
        raise TimeoutError(f"/healthz not 200 within {within:.0f} s: {healthz_body(self.serve.url)}")

    def inference_tasks_held(self) -> set[bytes]:
        """Delivery tags of the reply tasks a live worker holds: delivered and not yet
        acknowledged (kombu's `unacked` hash), less those of workers killed before."""
        import redis

        client = redis.Redis(port=self.redis.port, socket_timeout=2)
        try:
            held = {tag for tag, raw in client.hgetall("unacked").items() if json.loads(raw)[2] == "inference"}
        finally:
            client.close()
        return held - self.orphaned

    def unanswered(self) -> list[tuple]:
        """Visitor messages with no bot decision, from the database (for a failure's message)."""
        import psycopg

        with psycopg.connect(self.postgres.url, connect_timeout=5) as conn:
            return conn.execute(
                "SELECT m.id, m.created_at, m.text, c.status FROM conversations_message m "
                "JOIN conversations_conversation c ON c.id = m.conversation_id "
                "WHERE m.sender = 'visitor' AND m.confidence IS NULL AND NOT EXISTS "
                "(SELECT 1 FROM conversations_message r WHERE r.reply_to_id = m.id) ORDER BY m.id LIMIT 20"
            ).fetchall()

    def inject(self, fault: str) -> dict:
        """Cause the fault; returns what it found at that moment."""
        if fault in ("worker_kill_mid_task", "worker_kill_idle"):
            holding = fault == "worker_kill_mid_task"
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                held = self.inference_tasks_held()
                if bool(held) == holding:
                    break
                time.sleep(0.002)
            else:
                raise TimeoutError(f"the inference worker never {'held a task' if holding else 'was idle'}")
            [worker] = self.serve.children("inference")
            os.kill(worker, signal.SIGKILL)
            # What it held stays in `unacked` until the visibility timeout: not a live worker's.
            self.orphaned |= self.inference_tasks_held()
            return {"tasks_held_at_kill": len(held)}
        if fault == "postgres_restart":
            self.postgres.restart_fast()
        elif fault == "redis_restart_empty":
            self.redis.kill()
            time.sleep(3)
            self.redis.start()
        elif fault == "redis_down_at_publish":
            self.plug.pull_at_publish("inference", outage_s=3)
            deadline = time.monotonic() + 20
            while not self.plug.dropped and time.monotonic() < deadline:
                time.sleep(0.01)
            return {"publishes_dropped": self.plug.dropped_task_args()}
        elif fault == "server_kill":
            self.serve.process.kill()
            self.serve.process.wait()
            time.sleep(1)
            self.serve = self.serve_class(self.directory, self.env, port=self.port)
        return {}

    def stop(self) -> None:
        self.serve.stop()
        self.plug.stop()


def run_fault(stack: Stack, fault: str, visitors: int, interval: float, before: float = 2, after: float = 4,
              drain: float = 60, send_until_back: bool = True) -> dict:  # fmt: skip
    """One phase: load, the fault, more load (`after` s, and until the stack is back
    with `send_until_back`), then wait for every acked message to be answered."""
    crowd = [Visitor(stack.serve.url, interval) for _ in range(visitors)]
    watch = HealthWatch(stack)
    watch.start()
    for visitor in crowd:
        visitor.start()
        visitor.sending.set()
    time.sleep(before)
    watch.fault()
    fault_at = time.monotonic()
    try:
        found = stack.inject(fault)
    except BaseException:
        watch.stopped.set()
        for visitor in crowd:
            visitor.stopped.set()
        raise
    # More load after the fault, until the stack is back (at most 180 s).
    while time.monotonic() - fault_at < 180 and (time.monotonic() - fault_at < after or watch.back_at is None):
        if not send_until_back and time.monotonic() - fault_at >= after:
            for visitor in crowd:
                visitor.sending.clear()
        time.sleep(0.1)
    back_at = watch.back_at
    for visitor in crowd:
        visitor.sending.clear()
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline:
        if all(not v.unacked for v in crowd) and all(r["answered"] == r["acked"] for r in (v.counts() for v in crowd)):
            break
        time.sleep(0.2)
    try:
        healthy_after = stack.wait_healthy(within=max(30.0, deadline - time.monotonic())) is not None
    except TimeoutError as error:
        raise TimeoutError(f"{error}; unanswered (id, created, text, status): {stack.unanswered()}") from None
    finally:
        watch.stopped.set()
        for visitor in crowd:
            visitor.stopped.set()
    watch.stopped.set()
    watch.join(timeout=10)
    for visitor in crowd:
        visitor.stopped.set()
    for visitor in crowd:
        visitor.join(timeout=5)
    rows = [v.counts() for v in crowd]
    total = {key: sum(r[key] for r in rows) for key in ("sent", "acked", "answered", "duplicated")}
    acked_ids = {m for v in crowd for m in v.acked.values()}
    answered_ids = {m for v in crowd for m in v.replies}
    last = max((r["last_answer"] for r in rows), default=fault_at)
    back_at = back_at or time.monotonic()
    return {
        "fault": fault,
        **total,
        "lost": total["acked"] - total["answered"],
        "unacked": sum(len(v.unacked) for v in crowd),
        "healthz_503_while_degraded": watch.saw_503,
        "healthz_200_after": healthy_after,
        "back_s": round(back_at - fault_at, 1),
        "recovery_s": round(max(0.0, last - fault_at), 1),
        "answered_after_back_s": round(max(0.0, last - back_at), 1),
        **found,
        # For a dropped publish: was its message acked to a visitor, and answered?
        **(
            {
                "dropped_acked_and_answered": [
                    (int(args.strip("(,)")) in acked_ids, int(args.strip("(,)")) in answered_ids)
                    for args in found["publishes_dropped"]
                ]
            }
            if "publishes_dropped" in found
            else {}
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--faults", default=",".join(FAULTS))
    args = parser.parse_args()

    import tempfile

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    from bench.machine import describe
    from tests.faults.conftest import PostgresCluster, RedisPlug, RedisServer, Serve, demo_model

    directory = Path(tempfile.mkdtemp(prefix="chatbot-chaos-"))
    os.chmod(directory, 0o755)
    pg_dir = Path(tempfile.mkdtemp(prefix="chatbot-chaos-pg-"))
    if os.geteuid() == 0:
        import shutil

        shutil.chown(pg_dir, "postgres")
    os.chmod(pg_dir, 0o755)
    postgres, redis = PostgresCluster(pg_dir), RedisServer(directory)
    try:
        stack = Stack(directory, demo_model(), postgres, redis, Serve, RedisPlug)
        stack.wait_healthy(within=120)
        print(f"{'fault':22} {'sent':>5} {'acked':>5} {'answered':>8} {'lost':>4} {'dup':>4} "
              f"{'503 seen':>8} {'200 after':>9} {'back s':>6} {'answered s':>10} {'after back s':>12}")  # fmt: skip
        for fault in args.faults.split(","):
            row = run_fault(stack, fault, args.visitors, args.interval)
            print(f"{row['fault']:22} {row['sent']:>5} {row['acked']:>5} {row['answered']:>8} {row['lost']:>4} "
                  f"{row['duplicated']:>4} {row['healthz_503_while_degraded']!s:>8} {row['healthz_200_after']!s:>9} "
                  f"{row['back_s']:>6} {row['recovery_s']:>10} {row['answered_after_back_s']:>12}", flush=True)  # fmt: skip
        stack.stop()
    finally:
        redis.kill()
        postgres.stop()
    print(f"{args.visitors} visitors, one message every {args.interval} s each")
    print(describe())


if __name__ == "__main__":
    main()
