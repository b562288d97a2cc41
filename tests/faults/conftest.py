"""Processes a fault test starts and kills itself: a redis-server and a
PostgreSQL cluster on spare ports of 127.0.0.1 (never this machine's own
services), and `manage.py serve` pointed at them."""

import os
import shutil
import signal
import subprocess
import sys
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


class PostgresCluster:
    """A throwaway PostgreSQL cluster (initdb, pg_ctl) on a spare port, trust auth on loopback."""

    def __init__(self, directory: Path) -> None:
        if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
            pytest.skip("initdb/pg_ctl are not installed")
        self.port = free_port()
        self.data = directory / "pgdata"
        self.socket_dir = directory
        self.log = directory / "postgres.log"
        run_as = self._as_postgres()
        subprocess.run(
            [*run_as, "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
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
            [*self._as_postgres(), "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args],
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


@pytest.fixture
def postgres_cluster():
    import tempfile

    # Outside pytest's private temp folder: the cluster runs as the postgres user when we are root.
    directory = Path(tempfile.mkdtemp(prefix="chatbot-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    os.chmod(directory, 0o755)
    cluster = PostgresCluster(directory)
    yield cluster
    cluster.stop()
    shutil.rmtree(directory, ignore_errors=True)


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
