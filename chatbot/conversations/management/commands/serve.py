"""Run the product: the ASGI server and, without Redis, a worker inside it;
with REDIS_URL, worker processes per queue and the scheduler beside it (unless
--no-workers), supervised: a child that dies is restarted within seconds, all
die with the server, and one scheduler runs per Redis (chatbot/ops/supervisor.py)."""

import ipaddress
import sys
from pathlib import Path

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from chatbot.celery import Queue

# A 2,000-character message is at most 8,000 bytes of UTF-8 plus the frame's
# JSON; anything far larger is refused by the server before it is parsed.
WS_MAX_BYTES = 16 * 1024


def check_debug_host(host: str) -> None:
    """DEBUG shows settings and code on every error page: only to this machine, unless
    DEBUG_ON_PUBLIC_HOST says the exposure is meant (issue 13)."""
    if settings.DEBUG and not is_loopback(host) and not settings.DEBUG_ON_PUBLIC_HOST:
        raise CommandError(
            f"Refusing to serve with DEBUG on {host}, which other machines can reach. "
            "Serve on 127.0.0.1 (HOST), turn DEBUG off (with a SECRET_KEY), or set DEBUG_ON_PUBLIC_HOST=1."
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Command(BaseCommand):
    help = "Serve HTTP and websockets; start Celery workers (embedded, or as supervised processes with REDIS_URL)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.HOST)
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--no-workers", action="store_true", help="with REDIS_URL: do not start workers")

    def handle(self, host: str, port: int, no_workers: bool, **options):
        check_debug_host(host)
        supervisor = None
        if settings.EMBEDDED:
            from chatbot import embedded_worker

            embedded_worker.start()
        elif not no_workers:
            supervisor = supervise(worker_commands()).start()
        self.stdout.write(f"Serving on http://{host}:{port}/ (Ctrl-C to stop)")
        try:
            uvicorn.run(
                "chatbot.asgi:application",
                host=host,
                port=port,
                ws_max_size=WS_MAX_BYTES,
                # Chat frames are a few hundred bytes: compressing each one cost the
                # server more CPU than it saved (docs/benchmarks.md, chat latency).
                ws_per_message_deflate=False,
                log_level=settings.LOG_LEVEL.lower(),
                lifespan="off",
            )
        finally:
            if supervisor is not None:
                supervisor.stop()


def supervise(commands: list[list[str]]):
    """A supervisor for the worker commands, with celery beat under the Redis lock."""
    from chatbot.ops.supervisor import BeatLock, Supervisor

    workers = {command[command.index("-Q") + 1]: command for command in commands if "worker" in command}
    beat = next((command for command in commands if "beat" in command), None)
    return Supervisor(workers, beat=beat, beat_lock=BeatLock(settings.REDIS_URL) if beat else None)


def worker_commands() -> list[list[str]]:
    """The worker processes beside the server with REDIS_URL: one per queue, and the
    scheduler (celery beat) for the nightly retraining when it is on."""
    celery = [sys.executable, "-m", "celery", "-A", "chatbot"]
    commands = []
    # Inference: threads share one model in one process (CUDA is not fork-safe) and
    # their predictions are micro-batched.
    for queue, pool in ((Queue.INFERENCE, "threads"), (Queue.DEFAULT, "threads"), (Queue.TRAINING, "solo")):
        commands.append(
            [
                *celery,
                "worker",
                "-Q",
                queue.value,
                "--pool",
                pool,
                "--concurrency",
                "1" if pool == "solo" else "4",
                "--hostname",
                f"{queue.value}@%h",
                "--loglevel",
                settings.LOG_LEVEL,
            ]  # fmt: skip
        )
    if settings.CELERY_BEAT_SCHEDULE:
        Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent.mkdir(parents=True, exist_ok=True)
        commands.append(
            [
                *celery,
                "beat",
                "--schedule",
                str(settings.CELERY_BEAT_SCHEDULE_FILENAME),
                "--loglevel",
                settings.LOG_LEVEL,
            ]
        )
    return commands
