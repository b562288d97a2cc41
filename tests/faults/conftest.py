"""Processes a fault test starts and kills itself: a redis-server and a
PostgreSQL cluster on spare ports of 127.0.0.1 (never this machine's own
services), a proxy in front of Redis that the test pulls out at a given
command, and `manage.py serve` pointed at them."""

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import DEMO_INTENTS, REPO, TEST_CACHE, _fingerprint, free_port, wait_for_http


def wait_until(predicate, within: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not within {within} s: {what}")


class RedisServer:
    """A throwaway redis-server: no persistence, so a restart comes back empty."""

    def __init__(self, directory: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.log = (self.directory / f"redis-{self.port}.log").open("a")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_until(lambda: self._pings(client), 10, "redis-server answers PING")

    @staticmethod
    def _pings(client) -> bool:
        import redis

        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


class RedisPlug:
    """A TCP proxy between the stack and a redis-server that the test pulls out:
    `pull_at_publish` cuts Redis off the moment a client publishes a task to a
    queue (an LPUSH onto it, which Celery sends in `on_commit`, after the
    database commit): that command is dropped, every connection closed and new
    ones refused for `outage_s`, then Redis is reachable again."""

    PUBLISH = b"$5\r\nLPUSH\r\n$%d\r\n%s\r\n"

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.unplugged = False
        self.armed: tuple[bytes, float] | None = None
        self.dropped: list[bytes] = []  # the publishes that never reached Redis
        self.pulled_at: float | None = None
        self._writers: set = set()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,), name="redis-plug", daemon=True)
        self.thread.start()
        ready.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", self.port))
        ready.set()
        self.loop.run_forever()

    async def _connection(self, client_reader, client_writer) -> None:
        try:
            await self._proxy(client_reader, client_writer)
        except asyncio.CancelledError:  # stop(): end quietly
            client_writer.transport.abort()

    async def _proxy(self, client_reader, client_writer) -> None:
        if self.unplugged:
            client_writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, upstream_writer}
        pumps = [
            asyncio.ensure_future(self._pump(client_reader, upstream_writer, inspect=True)),
            asyncio.ensure_future(self._pump(upstream_reader, client_writer, inspect=False)),
        ]
        # Either side closing closes both, as a dead redis-server's connections do.
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        for writer in (client_writer, upstream_writer):
            self._writers.discard(writer)
            writer.transport.abort()

    async def _pump(self, reader, writer, inspect: bool) -> None:
        try:
            await self._forward(reader, writer, inspect)
        except (OSError, asyncio.CancelledError):
            pass

    async def _forward(self, reader, writer, inspect: bool) -> None:
        tail = b""
        while not self.unplugged:
            chunk = await reader.read(65536)
            if not chunk:
                break
            if inspect and self.armed is not None:
                pattern, outage_s = self.armed
                seen = tail + chunk
                if pattern in seen:
                    self.armed = None
                    self.dropped.append(await self._rest_of_command(reader, seen[seen.index(pattern) :]))
                    self._pull(outage_s)
                    break
                tail = seen[-len(pattern) :]
            writer.write(chunk)
            await writer.drain()

    ARGS = re.compile(rb'"argsrepr": "([^"]*)"')

    @classmethod
    async def _rest_of_command(cls, reader, seen: bytes) -> bytes:
        """The dropped publish up to its task's arguments (it may span reads)."""
        while not cls.ARGS.search(seen):
            try:
                chunk = await asyncio.wait_for(reader.read(65536), timeout=0.5)
            except TimeoutError:
                break
            if not chunk:
                break
            seen += chunk
        return seen

    def _pull(self, outage_s: float) -> None:
        self.unplugged = True
        self.pulled_at = time.monotonic()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self.loop.call_later(outage_s, self._plug_in)

    def _plug_in(self) -> None:
        self.unplugged = False

    def pull_at_publish(self, queue: str, outage_s: float) -> None:
        """Arm the plug: the next task published to `queue` pulls it."""
        name = queue.encode()
        pattern = self.PUBLISH % (len(name), name)
        self.loop.call_soon_threadsafe(setattr, self, "armed", (pattern, outage_s))

    def dropped_task_args(self) -> list[str]:
        """The arguments (argsrepr) of each dropped publish, e.g. "(42,)"."""
        found = [self.ARGS.search(payload) for payload in self.dropped]
        return [match.group(1).decode() if match else "?" for match in found]

    def stop(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    yield server
    server.kill()


def children_of(pid: int) -> dict[int, str]:
    """Live (not zombie) child processes of `pid`: {pid: command line}."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class Serve:
    """`manage.py serve` as a process, on a given Redis and database."""

    def __init__(self, directory: Path, env: dict, args: list[str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / f"serve-{self.port}.log"
        self.log = self.log_path.open("a")
        clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port), *(args or [])],
            cwd=REPO,
            env={**clean, "DEBUG": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                 "INFERENCE_THREADS": "1", **env},
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_for_http(self.url + "/healthz", process=self.process)

    def children(self, kind: str) -> list[int]:
        """Pids of the live children of one kind: a queue name or "beat"."""
        found = children_of(self.process.pid)
        if kind == "beat":
            return [pid for pid, command in found.items() if " beat " in command]
        return [pid for pid, command in found.items() if f"-Q {kind} " in command]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def postgres_bin() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


class PostgresCluster:
    """A throwaway PostgreSQL cluster (initdb, pg_ctl) on a spare port, trust auth on loopback."""

    def __init__(self, directory: Path) -> None:
        self.bin = postgres_bin()
        if self.bin is None:
            pytest.skip("initdb/pg_ctl are not installed (on PATH or in /usr/lib/postgresql/*/bin)")
        self.port = free_port()
        self.data = directory / "pgdata"
        self.socket_dir = directory
        self.log = directory / "postgres.log"
        run_as = self._as_postgres()
        subprocess.run(
            [*run_as, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self.start()

    @staticmethod
    def _as_postgres() -> list[str]:
        # initdb refuses to run as root.
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self._as_postgres(), str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.socket_dir} -c fsync=off"
        self.pg_ctl("-o", options, "start")

    def restart_fast(self) -> None:
        self.pg_ctl("-m", "fast", "restart")

    def stop(self) -> None:
        try:
            self.pg_ctl("-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass


@contextlib.contextmanager
def throwaway_postgres():
    """A PostgreSQL cluster in its own temporary folder, removed afterwards."""
    import tempfile

    # Outside pytest's private temp folder: the cluster runs as the postgres user when we are root.
    directory = Path(tempfile.mkdtemp(prefix="chatbot-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    os.chmod(directory, 0o755)
    try:
        cluster = PostgresCluster(directory)
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgres_cluster():
    with throwaway_postgres() as cluster:
        yield cluster


def demo_model() -> Path:
    """The demo intent model the tests use (tests/conftest.py's demo_model_dir), outside pytest too."""
    import yaml

    from inference import Example, TrainConfig, train_intent_model

    target = TEST_CACHE / f"demo-model-{_fingerprint(DEMO_INTENTS, REPO / 'inference')}"
    if not target.exists():
        data = yaml.safe_load(DEMO_INTENTS.read_text())
        examples = [Example(text=t, intent=i["name"]) for i in data["intents"] for t in i["examples"]]
        TEST_CACHE.mkdir(parents=True, exist_ok=True)
        train_intent_model(examples, target, config=TrainConfig(mode="fast", seed=13))
    return target
