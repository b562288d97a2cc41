"""`manage.py serve` supervises what it starts: a dead worker is back within
seconds, every child dies with the server (even on SIGKILL), and a second
server on the same Redis runs no second scheduler until the first is gone."""

import os
import signal

from tests.faults.conftest import Serve, alive, children_of, wait_until


def test_serve_restarts_a_killed_worker_stops_children_with_it_and_runs_one_beat(redis_server, tmp_path):
    env = {
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "beat-schedule"),
        "MODEL_DIR": str(tmp_path / "models"),
    }
    first = Serve(tmp_path, env)
    second = None
    try:
        for kind in ("inference", "default", "training", "beat"):
            wait_until(lambda kind=kind: first.children(kind), 30, f"a {kind} child of the first serve")
        [worker] = first.children("inference")

        # 1. A SIGKILLed inference worker is replaced within seconds.
        os.kill(worker, signal.SIGKILL)
        replacement = wait_until(
            lambda: [pid for pid in first.children("inference") if pid != worker], 10, "a new inference worker"
        )
        assert len(replacement) == 1

        # 2. A second server on the same Redis runs its workers but no second scheduler.
        second = Serve(tmp_path, {**env, "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "beat-schedule-2")})
        wait_until(lambda: second.children("inference"), 30, "the second serve's inference worker")
        wait_until(lambda: second.children("training"), 30, "the second serve's training worker")
        assert second.children("beat") == []
        assert len(first.children("beat")) == 1

        # 3. SIGKILL of the first server takes all its children with it ...
        orphans = list(children_of(first.process.pid))
        assert len(orphans) == 4
        first.process.kill()
        first.process.wait()
        wait_until(lambda: not [pid for pid in orphans if alive(pid)], 30, "the first serve's children exit")

        # ... and the second one takes over the scheduler once the lock expires.
        wait_until(lambda: second.children("beat"), 30, "the second serve starts the scheduler")

        # 4. A normal stop ends every child too.
        left = list(children_of(second.process.pid))
        second.stop()
        assert second.process.returncode is not None
        wait_until(lambda: not [pid for pid in left if alive(pid)], 10, "the second serve's children exit")
    finally:
        for server in (first, second):
            if server is not None:
                for pid in children_of(server.process.pid):
                    os.kill(pid, signal.SIGKILL)
                server.stop()


def test_a_second_embedded_server_on_the_same_schedule_runs_no_scheduler(settings, tmp_path):
    from chatbot import embedded_worker

    settings.CELERY_BEAT_SCHEDULE_FILENAME = str(tmp_path / "beat-schedule")
    assert embedded_worker.hold_scheduler_lock()
    assert not embedded_worker.hold_scheduler_lock()
