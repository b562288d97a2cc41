"""Acked means answered: a stored message whose task was lost (broker down at
publish, a database error inside the task) is still answered, once."""

import time
import uuid
from datetime import timedelta

import kombu.exceptions
import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError
from django.utils import timezone

from chatbot.conversations import services
from chatbot.conversations.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for_bot_replies(count: int, within: float = 20) -> list[Message]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        replies = list(Message.objects.filter(sender="bot"))
        if len(replies) >= count:
            return replies
        time.sleep(0.05)
    raise AssertionError(
        f"{count} bot replies expected within {within} s, got {Message.objects.filter(sender='bot').count()}"
    )


@pytest.fixture
def broker_down_once(monkeypatch):
    """The first publish of the reply task fails as if Redis were unreachable."""
    from chatbot.conversations.tasks import reply_to_visitor_message

    real_delay = reply_to_visitor_message.delay
    failures = []

    def delay(*args, **kwargs):
        if not failures:
            failures.append(args)
            raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return real_delay(*args, **kwargs)

    monkeypatch.setattr(reply_to_visitor_message, "delay", delay)
    return failures


@pytest.mark.asyncio
async def test_message_stored_while_the_broker_is_down_is_acked_and_the_socket_stays_open(
    visitor, broker_down_once, authed, send_message
):
    communicator, _ = await authed(visitor)
    ack = await send_message(communicator, "where is my parcel?")
    assert ack["type"] == "ack"
    assert broker_down_once  # the publish did fail
    await communicator.send_json_to({"type": "ping"})
    assert (await communicator.receive_json_from(timeout=5))["type"] in ("typing", "pong")
    await communicator.disconnect()
    assert await database_sync_to_async(Message.objects.filter(sender="visitor").count)() == 1


def test_sweeper_answers_a_message_that_was_stored_but_never_queued(
    visitor, active_model, celery_worker, broker_down_once, settings
):
    from chatbot.conversations import recovery

    message, created = services.record_visitor_message(visitor.conversation.pk, "hello there", uuid.uuid4())
    assert created and broker_down_once
    time.sleep(1)
    assert not Message.objects.filter(sender="bot").exists()  # nothing was queued

    settings.REPLY_RECOVERY_AFTER_S = 0.5
    assert recovery.requeue_unanswered() == [message.pk]
    assert recovery.requeue_unanswered() == []  # not enqueued twice while it waits
    [reply] = wait_for_bot_replies(1)
    assert reply.reply_to_id == message.pk
    time.sleep(1.5)
    assert recovery.requeue_unanswered() == []  # answered: nothing left to recover
    assert Message.objects.filter(sender="bot").count() == 1


def test_sweeper_enqueues_a_message_again_only_once_its_age_has_doubled(visitor, settings, broker_down_once):
    from chatbot.conversations import recovery

    settings.REPLY_RECOVERY_AFTER_S = 0.5
    message, _ = services.record_visitor_message(visitor.conversation.pk, "anyone?", uuid.uuid4())
    assert broker_down_once  # never queued: no worker answers it in this test
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(seconds=2))
    assert recovery.requeue_unanswered() == [message.pk]
    time.sleep(1.2)  # past REPLY_RECOVERY_AFTER_S, not yet twice its age of 2 s
    assert recovery.requeue_unanswered() == []
    time.sleep(1.3)
    assert recovery.requeue_unanswered() == [message.pk]


def test_sweeper_leaves_young_old_and_decided_messages_alone(visitor, settings):
    from chatbot.conversations import recovery

    settings.REPLY_RECOVERY_AFTER_S = 10
    settings.REPLY_RECOVERY_MAX_AGE_S = 3600
    young, _ = services.record_visitor_message(visitor.conversation.pk, "young", uuid.uuid4())
    ancient, _ = services.record_visitor_message(visitor.conversation.pk, "ancient", uuid.uuid4())
    decided, _ = services.record_visitor_message(visitor.conversation.pk, "decided", uuid.uuid4())
    waiting, _ = services.record_visitor_message(visitor.conversation.pk, "waiting", uuid.uuid4())
    now = timezone.now()
    Message.objects.filter(pk=ancient.pk).update(created_at=now - timedelta(hours=2))
    Message.objects.filter(pk__in=[decided.pk, waiting.pk]).update(created_at=now - timedelta(seconds=30))
    Message.objects.filter(pk=decided.pk).update(confidence=0.2, intent="x")  # a person handles it: no reply
    assert recovery.requeue_unanswered(now=now) == [waiting.pk]
    assert 29 < recovery.oldest_unanswered_age_s(now=now) < 31


def test_reply_task_retries_after_a_database_error(visitor, active_model, celery_worker, monkeypatch):
    real_answer = services.answer_visitor_message
    calls = []

    def answer_after_a_restart(message_id, prediction, **options):
        calls.append(message_id)
        if len(calls) == 1:
            raise OperationalError("terminating connection due to administrator command")
        return real_answer(message_id, prediction, **options)

    monkeypatch.setattr(services, "answer_visitor_message", answer_after_a_restart)
    message, _ = services.record_visitor_message(visitor.conversation.pk, "hello there", uuid.uuid4())
    [reply] = wait_for_bot_replies(1, within=20)
    assert reply.reply_to_id == message.pk and len(calls) == 2
