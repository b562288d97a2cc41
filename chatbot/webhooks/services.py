"""Webhook verbs: record an event for its subscribers, attempt a delivery,
schedule the next try, redeliver by hand, disable a failing subscription."""

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from chatbot.ops.versioned import VersionedCache
from chatbot.webhooks import sending
from chatbot.webhooks.models import Delivery, Event, Subscription

log = logging.getLogger(__name__)


# --- Events --------------------------------------------------------------------


def emit(event_type: str, payload: dict) -> Event | None:
    """Record `event_type` for every active subscription that wants it, in the current
    transaction; the deliveries start once it commits. None when nobody listens."""
    subscribers = [pk for pk, events in active_subscriptions() if event_type in events]
    if not subscribers:
        return None
    with transaction.atomic():
        event = Event.objects.create(type=event_type, payload=payload)
        retry_until = timezone.now() + timedelta(seconds=settings.WEBHOOK_RETRY_FOR_S)
        deliveries = Delivery.objects.bulk_create(
            [
                Delivery(event=event, subscription_id=pk, retry_until=retry_until, next_attempt_at=event.created_at)
                for pk in subscribers
            ]
        )
        ids = [d.pk for d in deliveries]
        transaction.on_commit(lambda: _enqueue(ids))
    return event


# Every visitor message and bot reply is an event: the active subscriptions are kept
# in memory (a query per message before), read again after any change to one.
subscriptions = VersionedCache("webhook-subscriptions")


def active_subscriptions() -> tuple[tuple[int, tuple[str, ...]], ...]:
    """(pk, event types) of every active subscription."""
    return subscriptions.get(
        "active",
        lambda: tuple(
            (pk, tuple(events))
            for pk, events in Subscription.objects.filter(is_active=True).values_list("pk", "events")
        ),
    )


def _enqueue(delivery_ids: list[int], countdown: float | None = None) -> None:
    from chatbot.webhooks.tasks import deliver_webhook

    for delivery_id in delivery_ids:
        deliver_webhook.apply_async((delivery_id,), countdown=countdown)


# --- Attempts -------------------------------------------------------------------


def backoff_s(attempts: int) -> float:
    """Exponential backoff with jitter: base·2^(n-1), capped, then a random point in its upper half
    (so retries of many events spread out instead of arriving together)."""
    delay = min(settings.WEBHOOK_RETRY_MAX_DELAY_S, settings.WEBHOOK_RETRY_BASE_S * 2 ** max(0, attempts - 1))
    return random.uniform(delay / 2, delay)


def attempt(delivery_id: int) -> float | None:
    """One attempt if the delivery is due; returns the seconds until the next try, or None when done.

    Safe to run twice: taking the attempt moves next_attempt_at past its timeout in one
    conditional UPDATE, so a duplicate task finds nothing due and returns."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_S + 30)
    taken = Delivery.objects.filter(
        pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now, subscription__is_active=True
    ).update(next_attempt_at=lease, attempts=F("attempts") + 1, last_attempt_at=now)
    if not taken:
        _give_up_if_disabled(delivery_id)
        return None
    delivery = Delivery.objects.select_related("event", "subscription").get(pk=delivery_id)
    outcome = sending.send(delivery.subscription.url, delivery.subscription.secret, delivery.event)
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    if outcome.ok:
        delivery.status = Delivery.Status.SUCCEEDED
        delivery.next_attempt_at = None
        with transaction.atomic():  # one commit, not two
            delivery.save(update_fields=["status", "last_status_code", "last_error", "next_attempt_at"])
            Subscription.objects.filter(pk=delivery.subscription_id).exclude(consecutive_failures=0).update(
                consecutive_failures=0
            )
        return None
    delay = max(backoff_s(delivery.attempts), outcome.retry_after_s or 0)
    delay = min(delay, settings.WEBHOOK_RETRY_MAX_DELAY_S)
    next_at = timezone.now() + timedelta(seconds=delay)
    if outcome.retryable and next_at <= delivery.retry_until:
        delivery.next_attempt_at = next_at
        delivery.save(update_fields=["last_status_code", "last_error", "next_attempt_at"])
        return delay
    delivery.status = Delivery.Status.FAILED
    delivery.next_attempt_at = None
    with transaction.atomic():
        delivery.save(update_fields=["status", "last_status_code", "last_error", "next_attempt_at"])
        _count_failed_event(delivery.subscription_id)
    return None


def _give_up_if_disabled(delivery_id: int) -> None:
    Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING, subscription__is_active=False).update(
        status=Delivery.Status.FAILED, last_error="The subscription is disabled.", next_attempt_at=None
    )


def _count_failed_event(subscription_id: int) -> None:
    Subscription.objects.filter(pk=subscription_id).update(consecutive_failures=F("consecutive_failures") + 1)
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    if limit <= 0:
        return
    reason = f"Disabled after {limit} events in a row could not be delivered."
    disabled = Subscription.objects.filter(pk=subscription_id, is_active=True, consecutive_failures__gte=limit).update(
        is_active=False, disabled_at=timezone.now(), disabled_reason=reason
    )
    if disabled:  # exactly one worker gets here, so one email
        subscriptions.changed_now_and_after_commit()  # an update() sends no post_save
        subscription = Subscription.objects.get(pk=subscription_id)
        transaction.on_commit(lambda: _email_admins(subscription, reason))


def _email_admins(subscription: Subscription, reason: str) -> None:
    recipients = {email for _, email in settings.ADMINS} | set(
        get_user_model()
        .objects.filter(is_superuser=True, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    log.warning("webhook subscription %s disabled: %s", subscription, reason)
    if not recipients:
        return
    send_mail(
        subject=f"Webhook subscription '{subscription.name}' was disabled",
        message=(
            f"{reason}\n\nURL: {subscription.url}\n"
            "Fix the receiver, then tick 'is active' on the subscription in the admin and redeliver "
            "the failed deliveries from the delivery log."
        ),
        from_email=None,
        recipient_list=sorted(recipients),
        fail_silently=True,
    )


# --- By hand ---------------------------------------------------------------------


def redeliver(delivery_ids: list[int]) -> int:
    """Send again, now, with a fresh retry window (any status: a receiver may have lost what it got)."""
    now = timezone.now()
    ids = list(Delivery.objects.filter(pk__in=delivery_ids, subscription__is_active=True).values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=ids).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=now,
        retry_until=now + timedelta(seconds=settings.WEBHOOK_RETRY_FOR_S),
    )
    transaction.on_commit(lambda: _enqueue(ids))
    return len(ids)


def retry_due() -> int:
    """Enqueue deliveries whose next try is overdue (a lost or expired broker message)."""
    overdue = timezone.now() - timedelta(seconds=60)
    ids = list(
        Delivery.objects.filter(
            status=Delivery.Status.PENDING, next_attempt_at__lte=overdue, subscription__is_active=True
        ).values_list("pk", flat=True)[:1000]
    )
    _enqueue(ids)
    return len(ids)
