"""/healthz tells the truth: 503 while a queue has no live worker or a visitor
message waits too long for the bot, 200 once that is over."""

import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from chatbot.celery import Queue
from chatbot.conversations import services
from chatbot.conversations.models import Message
from chatbot.ops import heartbeat


@pytest.fixture
def workers_alive():
    hosts = [f"{queue.value}@test" for queue in Queue]
    for queue, host in zip(Queue, hosts, strict=True):
        heartbeat.beat(host, [queue.value])
    yield
    for queue, host in zip(Queue, hosts, strict=True):
        heartbeat.forget(host, [queue.value])


def test_healthz_is_503_when_a_queue_has_no_live_worker(client, active_model):
    heartbeat.beat("inference@test", ["inference"], now=time.time() - 3 * heartbeat.stale_after_s())
    heartbeat.beat("default@test", ["default"])
    try:
        response = client.get("/healthz")
        assert response.status_code == 503
        workers = response.json()["workers"]
        assert not workers["ok"]
        assert "no live worker on inference, training" in workers["detail"]
    finally:
        heartbeat.forget("inference@test", ["inference"])
        heartbeat.forget("default@test", ["default"])


def test_healthz_is_200_with_a_live_worker_on_every_queue(client, active_model, workers_alive):
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["workers"] == {"ok": True, "detail": "default: 1, inference: 1, training: 1"}


def test_healthz_is_503_while_a_visitor_message_waits_past_the_threshold(
    client, active_model, workers_alive, visitor, settings
):
    settings.HEALTH_UNANSWERED_MAX_AGE_S = 30
    message, _ = services.record_visitor_message(visitor.conversation.pk, "anyone there?", uuid.uuid4())
    assert client.get("/healthz").status_code == 200  # just stored: not late yet
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(seconds=45))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert not response.json()["unanswered"]["ok"]
    assert "oldest unanswered visitor message: 45" in response.json()["unanswered"]["detail"]
    Message.objects.filter(pk=message.pk).update(confidence=0.9, intent="greeting")  # the bot decided
    assert client.get("/healthz").status_code == 200


def test_the_embedded_worker_beats_for_every_queue(celery_worker):
    for queue in Queue:
        assert heartbeat.live_workers(queue.value) == [celery_worker.hostname]


def test_a_worker_beats_only_after_the_warm_ups_of_its_queues(settings):
    """The inference worker loads its models first: /healthz must not count it before it can answer."""
    import threading

    settings.WORKER_HEARTBEAT_S = 0.1
    loaded = threading.Event()
    warm_up = loaded.wait  # a model that takes until `loaded` to load
    heartbeat.warm_up_before_beating("inference", warm_up)
    beating = heartbeat.Heartbeat("inference@warming", ["inference"]).start()
    try:
        time.sleep(0.5)
        assert "inference@warming" not in heartbeat.live_workers("inference")
        loaded.set()
        deadline = time.monotonic() + 5
        while "inference@warming" not in heartbeat.live_workers("inference") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "inference@warming" in heartbeat.live_workers("inference")
    finally:
        heartbeat._warm_ups["inference"].remove(warm_up)
        beating.stop()
