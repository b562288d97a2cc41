"""A quiet `make run` (issue 14): the links and logins a new user needs, and the
scheduler's every-5-s sweep kept out of the log at the default level."""

import logging
import re

import pytest
from celery.app import trace
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

SWEEP = "chatbot.conversations.tasks.recover_unanswered_messages"


def celery_lines(task: str) -> None:
    """What the scheduler and the worker log around one run of `task`, with Celery's own templates."""
    context = {"name": task, "id": "6c1f", "runtime": 0.002, "return_value": 0}
    logging.getLogger("celery.beat").info("Scheduler: Sending due task %s (%s)", "recover-unanswered-messages", task)
    logging.getLogger("celery.worker.strategy").info(trace.LOG_RECEIVED, context)
    logging.getLogger("celery.app.trace").info(trace.LOG_SUCCESS, context)


def test_the_sweep_is_logged_only_at_debug(caplog):
    assert SWEEP in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    caplog.set_level(logging.INFO)  # the default LOG_LEVEL
    celery_lines(SWEEP)
    assert caplog.records == []

    caplog.set_level(logging.DEBUG)
    celery_lines(SWEEP)
    assert [r.levelname for r in caplog.records] == ["DEBUG"] * 3
    assert "succeeded" in caplog.records[-1].getMessage()


def test_other_tasks_and_every_warning_keep_their_level(caplog):
    caplog.set_level(logging.INFO)
    celery_lines("chatbot.conversations.tasks.reply_to_visitor_message")
    # The scheduler's tick stays quiet; the worker's lines about any other task do not.
    assert [r.getMessage().split("[")[0] for r in caplog.records] == [
        "Task chatbot.conversations.tasks.reply_to_visitor_message"
    ] * 2
    caplog.clear()
    logging.getLogger("celery.beat").warning("Removing corrupted schedule file")
    logging.getLogger("celery.app.trace").error("Task %s[6c1f] raised unexpected: boom", SWEEP)
    logging.getLogger("chatbot.conversations.recovery").warning("re-enqueued 2 unanswered visitor message(s)")
    assert [r.levelname for r in caplog.records] == ["WARNING", "ERROR", "WARNING"]


@pytest.mark.django_db
def test_demo_logins_are_printed_with_full_links(capsys):
    call_command("create_demo_users", "--port", "8123")
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8123/agent/" in out and "http://127.0.0.1:8123/admin/" in out
    assert re.search(r"http://127\.0\.0\.1:8123/\s", out)  # the demo shop
    agent_password = re.search(r"login: agent / (\S+)", out).group(1)
    admin_password = re.search(r"login: admin / (\S+)", out).group(1)
    users = get_user_model().objects
    assert users.get(username="agent").check_password(agent_password)
    assert users.get(username="admin").check_password(admin_password)
