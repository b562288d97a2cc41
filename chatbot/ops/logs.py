"""Routine lines at DEBUG: the scheduler sends the unanswered-message sweep every few
seconds, and Celery logs each send, receipt and success at INFO. At the default
LOG_LEVEL that buried everything else; what a sweep finds it logs itself at WARNING."""

import logging

from django.conf import settings


def scheduled_task_names() -> set[str]:
    return {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}


class RoutineAtDebug(logging.Filter):
    """On a Celery logger: its INFO lines about the scheduler and scheduled tasks become
    DEBUG (shown only with LOG_LEVEL=DEBUG); anything else, and every warning or error
    (a failed sweep included), keeps its level."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or not self.routine(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    @staticmethod
    def routine(record: logging.LogRecord) -> bool:
        if record.name in ("celery.beat", "celery.worker.consumer.connection"):
            return True
        message = record.getMessage()
        return any(name in message for name in scheduled_task_names())
