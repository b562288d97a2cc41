"""Supervision of the processes `manage.py serve` starts beside the server: a
child that dies is started again within seconds, every child dies with the
server (PR_SET_PDEATHSIG, even when the server is SIGKILLed), and only one
scheduler (celery beat) runs per Redis, guarded by a lock that expires when
its holder dies.

A small loop rather than a supervisor daemon: the children are few, fixed and
started by the same process, and the parent-death signal needs the parent to
be the one that forks them.
"""

import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent(parent_pid: int):
    def preexec() -> None:
        # Linux: SIGTERM this child when the thread that forked it exits.
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    died_at: float | None = None
    env: dict | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class BeatLock:
    """One scheduler per Redis: a lock with a time to live, renewed by its holder.
    When the holder dies the lock expires and another server's supervisor takes it."""

    KEY = "chatbot:beat-lock"

    def __init__(self, redis_url: str, ttl_s: float = 15.0) -> None:
        import redis

        self.client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.ttl_ms = int(ttl_s * 1000)
        self.token = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def hold(self) -> bool:
        """Take or renew the lock; True while this process holds it."""
        try:
            if self.client.set(self.KEY, self.token, nx=True, px=self.ttl_ms):
                return True
            # Renew only our own lock (compare and extend in one step).
            renewed = self.client.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
                "else return 0 end",
                1,
                self.KEY,
                self.token,
                self.ttl_ms,
            )
            return bool(renewed)
        except Exception as exc:  # Redis down: keep what runs, decide again on the next tick
            log.warning("beat lock: Redis unreachable (%s)", exc)
            return None  # type: ignore[return-value]

    def release(self) -> None:
        try:
            self.client.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
                1,
                self.KEY,
                self.token,
            )
        except Exception:
            pass


class Supervisor:
    """Starts `children`, restarts any that exits, and runs `beat` only while
    `beat_lock` (if given) is held. All forks happen on the supervisor's own
    thread, which lives until stop(): the parent-death signal is tied to it."""

    def __init__(
        self,
        children: dict[str, list[str]],
        beat: list[str] | None = None,
        beat_lock: BeatLock | None = None,
        restart_delay_s: float = 1.0,
        tick_s: float = 0.5,
        stop_grace_s: float = 30.0,
    ) -> None:
        self.children = [Child(name, command) for name, command in children.items()]
        self.beat = Child("beat", beat) if beat else None
        self.beat_lock = beat_lock
        self.restart_delay_s = restart_delay_s
        self.tick_s = tick_s
        self.stop_grace_s = stop_grace_s
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    # --- Public ---------------------------------------------------------------

    def start(self) -> "Supervisor":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._stopped.wait(self.stop_grace_s + 10)

    def all_children(self) -> list[Child]:
        return [*self.children, *([self.beat] if self.beat else [])]

    # --- The loop -------------------------------------------------------------

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(child.command, preexec_fn=_die_with_parent(os.getpid()))  # noqa: PLW1509
        child.died_at = None
        log.info("started %s (pid %s)", child.name, child.pid)

    def _watch(self, child: Child) -> None:
        if child.alive():
            return
        now = time.monotonic()
        if child.process is not None and child.died_at is None:
            child.died_at = now
            log.error("%s (pid %s) exited with %s; restarting it", child.name, child.pid, child.process.returncode)
        if child.died_at is None or now - child.died_at >= self.restart_delay_s:
            if child.process is not None:
                child.restarts += 1
            self._spawn(child)

    def _watch_beat(self) -> None:
        if self.beat is None:
            return
        held = True if self.beat_lock is None else self.beat_lock.hold()
        if held is None:
            held = self.beat.alive()  # Redis unreachable: change nothing
        if held:
            self._watch(self.beat)
        elif self.beat.alive():
            log.warning("another server holds the scheduler lock now; stopping this one's beat")
            self._terminate([self.beat])
        elif self.beat.process is None and not getattr(self, "_said_no_beat", False):
            self._said_no_beat = True
            log.warning("another server runs the scheduler (celery beat); this one runs none while it lives")

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                for child in self.children:
                    self._watch(child)
                self._watch_beat()
                self._stopping.wait(self.tick_s)
        except Exception:
            log.exception("supervisor loop failed")
        finally:
            self._terminate(self.all_children())
            if self.beat_lock is not None:
                self.beat_lock.release()
            self._stopped.set()

    def _terminate(self, children: list[Child]) -> None:
        running = [c for c in children if c.alive()]
        for child in running:
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace_s
        for child in running:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("%s (pid %s) did not stop in %s s; killing it", child.name, child.pid, self.stop_grace_s)
                child.process.kill()
                child.process.wait()
