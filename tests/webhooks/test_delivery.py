"""Webhook deliveries through a real Celery worker to a real HTTP receiver on
127.0.0.1: signature, retries with backoff, no retry on 4xx, the delivery log,
manual redelivery, disabling after repeated failures, and the SSRF guard."""

import hashlib
import hmac
import time

import pytest
from django.core import mail
from django.test import override_settings

from chatbot.webhooks import services
from chatbot.webhooks.models import Delivery, Event, Subscription
from chatbot.webhooks.urlguard import UnsafeUrl, check_url
from tests.webhooks.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def emit_one(event_type: str = "csat.received", **payload) -> Event:
    event = services.emit(event_type, {"conversation_id": "c", "score": 5, **payload})
    assert event is not None
    return event


def delivery() -> Delivery:
    return Delivery.objects.select_related("event").get()


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """The receiver's check, as docs/api.md shows it."""
    timestamp, signature = headers["Webhook-Timestamp"], headers["Webhook-Signature"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, f"v1={expected}") and abs(time.time() - int(timestamp)) < 300


def test_signature_verifies_and_body_carries_id_type_time_payload(
    local_delivery, celery_worker, receiver, subscription
):
    event = emit_one(score=4)
    receiver.wait_for(1)
    request = receiver.received[0]
    assert verify(subscription.secret, request["headers"], request["body"])
    assert not verify("whsec_wrong", request["headers"], request["body"])
    assert not verify(subscription.secret, request["headers"], request["body"] + b" ")
    body = receiver.bodies()[0]
    assert body["id"] == str(event.id) == request["headers"]["Webhook-Id"]
    assert body["type"] == "csat.received" and body["data"] == {"conversation_id": "c", "score": 4}
    assert body["created_at"]
    wait_until(lambda: delivery().status == Delivery.Status.SUCCEEDED)


def test_fails_twice_then_succeeds_three_attempts_in_the_log(local_delivery, celery_worker, receiver, subscription):
    receiver.script = [500, 503, 200]
    event = emit_one()
    receiver.wait_for(3)
    wait_until(lambda: delivery().status == Delivery.Status.SUCCEEDED)
    row = delivery()
    assert row.attempts == 3 and row.last_status_code == 200
    assert [b["id"] for b in receiver.bodies()] == [str(event.id)] * 3
    time.sleep(1.5)
    assert len(receiver.received) == 3  # nothing after the success


def test_timeouts_and_429_are_retried(local_delivery, celery_worker, receiver, subscription):
    receiver.script = [("sleep", 2.5, 200), 429, 200]
    emit_one()
    receiver.wait_for(3)
    wait_until(lambda: delivery().status == Delivery.Status.SUCCEEDED)
    assert delivery().attempts == 3


def test_a_400_is_not_retried(local_delivery, celery_worker, receiver, subscription):
    receiver.script = [400, 200]
    emit_one()
    wait_until(lambda: delivery().status == Delivery.Status.FAILED)
    time.sleep(1.5)
    row = delivery()
    assert len(receiver.received) == 1 and row.attempts == 1 and row.last_status_code == 400
    assert Subscription.objects.get().consecutive_failures == 1


@override_settings(WEBHOOK_RETRY_FOR_S=1)
def test_retries_stop_when_the_window_is_over(local_delivery, celery_worker, receiver, subscription):
    receiver.script = [500]
    emit_one()
    wait_until(lambda: delivery().status == Delivery.Status.FAILED)
    attempts = delivery().attempts
    assert attempts >= 2
    time.sleep(1.5)
    assert delivery().attempts == attempts == len(receiver.received)


def test_manual_redelivery_from_the_admin(local_delivery, celery_worker, receiver, subscription, client, admin):
    receiver.script = [400, 200]
    emit_one()
    wait_until(lambda: delivery().status == Delivery.Status.FAILED)
    client.force_login(admin)
    client.post("/admin/webhooks/delivery/", {"action": "redeliver", "_selected_action": [delivery().pk]})
    wait_until(lambda: delivery().status == Delivery.Status.SUCCEEDED)
    assert delivery().attempts == 2 and len(receiver.received) == 2
    page = client.get("/admin/webhooks/delivery/").content.decode()
    assert "succeeded" in page


@override_settings(WEBHOOK_DISABLE_AFTER_FAILURES=3)
def test_subscription_disabled_after_n_failed_events_and_admins_emailed(
    local_delivery, celery_worker, receiver, subscription, admin
):
    admin.email = "root@shop.example"
    admin.save()
    receiver.script = [410]
    for score in (1, 2):
        emit_one(score=score)
    wait_until(lambda: Delivery.objects.filter(status=Delivery.Status.FAILED).count() == 2)
    assert Subscription.objects.get().is_active and not mail.outbox
    emit_one(score=3)
    wait_until(lambda: not Subscription.objects.get().is_active)
    disabled = Subscription.objects.get()
    assert disabled.disabled_at and "3 events" in disabled.disabled_reason
    wait_until(lambda: len(mail.outbox) == 1)
    assert mail.outbox[0].to == ["root@shop.example"] and "crm" in mail.outbox[0].subject
    # Nobody listens any more: a new event is not even recorded.
    assert services.emit("csat.received", {"score": 5}) is None
    assert len(receiver.received) == 3


def test_a_success_resets_the_failure_count(local_delivery, celery_worker, receiver, subscription):
    receiver.script = [400, 200]
    emit_one()
    wait_until(lambda: Subscription.objects.get().consecutive_failures == 1)
    emit_one()
    wait_until(lambda: Subscription.objects.get().consecutive_failures == 0)


def test_a_duplicate_task_does_not_send_twice(local_delivery, receiver, subscription):
    emit_one()
    row = delivery()
    assert services.attempt(row.pk) is None  # sent, succeeded
    assert services.attempt(row.pk) is None  # nothing due
    assert len(receiver.received) == 1 and delivery().attempts == 1


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap(settings):
    settings.WEBHOOK_RETRY_BASE_S, settings.WEBHOOK_RETRY_MAX_DELAY_S = 30, 3600
    for attempts, full in ((1, 30), (2, 60), (3, 120), (5, 480), (12, 3600)):
        delays = {services.backoff_s(attempts) for _ in range(50)}
        assert all(full / 2 <= d <= full for d in delays) and len(delays) > 1


# --- SSRF --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.5/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fe80::1]/hook",
        "https://0.0.0.0/hook",
        "https://100.64.0.1/hook",
    ],
)
def test_urls_resolving_to_non_public_addresses_are_refused(url):
    with pytest.raises(UnsafeUrl):
        check_url(url)


@override_settings(DEBUG=False)
def test_https_is_required_outside_debug():
    with pytest.raises(UnsafeUrl, match="https"):
        check_url("http://93.184.215.14/hook")
    assert check_url("https://93.184.215.14/hook").address == "93.184.215.14"


def test_admin_refuses_a_private_url(client, admin):
    client.force_login(admin)
    response = client.post(
        "/admin/webhooks/subscription/add/",
        {"name": "x", "url": "https://127.0.0.1/hook", "events": ["csat.received"], "secret": "s", "is_active": "on"},
    )
    assert response.status_code == 200 and "loopback" in response.content.decode()
    assert not Subscription.objects.exists()


@override_settings(DEBUG=True)
def test_a_delivery_to_a_private_address_is_refused_without_a_request(receiver, subscription):
    """The check runs again at send time (the row was made without the admin's form, or DNS changed)."""
    emit_one()
    assert services.attempt(delivery().pk) is None
    row = delivery()
    assert row.status == Delivery.Status.FAILED and "127.0.0.1" in row.last_error and "refused" in row.last_error
    assert receiver.received == []
