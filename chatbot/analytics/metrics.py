"""Prometheus metrics at /metrics (prometheus-client renders them).

Messages are stored and answered in Celery workers, other processes than the one
that serves /metrics, so the counters live where every process reaches them: in
Redis (the cache) when REDIS_URL is set, in this process when everything runs in
one. Queue depths, the active model and open websockets are read at scrape time.
"""

import hmac
import logging
import threading
from collections import Counter

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import CollectorRegistry

log = logging.getLogger(__name__)

# Seconds from a visitor message stored to the bot's answer stored and pushed.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BOT_ANSWER_OUTCOMES = ("answered", "fallback", "handoff")
PREFIX = "analytics:metric:"


class _LocalStore:
    """One process (embedded mode): a counter under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Counter = Counter()

    def incr(self, key: str, by: int = 1) -> None:
        self.incr_many({key: by})

    def incr_many(self, amounts: dict[str, int]) -> None:
        with self._lock:
            self._values.update(amounts)

    def get_many(self, keys: list[str]) -> dict:
        with self._lock:
            return {k: self._values[k] for k in keys}

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class _CacheStore:
    """Several processes: Redis INCR through the cache, atomic across workers."""

    def incr(self, key: str, by: int = 1) -> None:
        self.incr_many({key: by})

    def incr_many(self, amounts: dict[str, int]) -> None:
        # INCRBY starts a missing key at 0: one round trip for them all.
        with cache.pipeline() as pipe:
            for key, by in amounts.items():
                pipe.incrby(cache.make_and_validate_key(PREFIX + key), by)
            pipe.execute()

    def get_many(self, keys: list[str]) -> dict:
        found = cache.get_many([PREFIX + k for k in keys])
        return {k: int(found.get(PREFIX + k, 0)) for k in keys}

    def clear(self) -> None:
        cache.delete_many([PREFIX + k for k in _all_keys()])


_local = _LocalStore()


def store():
    return _local if settings.EMBEDDED else _CacheStore()


# Open websockets of this server process, by kind (visitor widget, agent dashboard).
_websockets: Counter = Counter()


def _all_keys() -> list[str]:
    keys = ["messages_received"]
    keys += [f"bot_answers:{o}" for o in BOT_ANSWER_OUTCOMES]
    keys += [f"latency_bucket:{i}" for i in range(len(LATENCY_BUCKETS) + 1)]
    keys += ["latency_sum_ms", "latency_count"]
    return keys


# --- Recording (from the signals, after commit) ---------------------------------


def count_visitor_message() -> None:
    try:
        store().incr("messages_received")
    except Exception:  # metrics never break a message
        log.exception("could not count a visitor message")


def bot_answer_outcome(message) -> str:
    from chatbot.conversations import services as chat

    if message.text in (chat.HANDOFF_TEXT, chat.NO_AGENT_TEXT):
        return "handoff"
    if message.out_of_scope or message.confidence is None or message.confidence < settings.INTENT_CONFIDENCE_THRESHOLD:
        return "fallback"
    return "answered"


def observe_bot_answer(message) -> None:
    from chatbot.conversations.models import Message

    try:
        asked_at = Message.objects.filter(pk=message.reply_to_id).values_list("created_at", flat=True).first()
        amounts = {f"bot_answers:{bot_answer_outcome(message)}": 1}
        if asked_at is not None:
            seconds = max(0.0, (message.created_at - asked_at).total_seconds())
            bucket = next((i for i, le in enumerate(LATENCY_BUCKETS) if seconds <= le), len(LATENCY_BUCKETS))
            amounts.update({f"latency_bucket:{bucket}": 1, "latency_sum_ms": round(seconds * 1000), "latency_count": 1})
        store().incr_many(amounts)
    except Exception:
        log.exception("could not observe a bot answer")


class WebsocketGauge:
    """ASGI middleware: counts accepted websockets until their consumer returns."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        kind = "agent" if scope.get("path", "").startswith("/ws/agent") else "visitor"
        accepted = False

        async def counting_send(message):
            nonlocal accepted
            if message.get("type") == "websocket.accept" and not accepted:
                accepted = True
                _websockets[kind] += 1
            await send(message)

        try:
            return await self.app(scope, receive, counting_send)
        finally:
            if accepted:
                _websockets[kind] -= 1


# --- Scraping -------------------------------------------------------------------


def queue_depths() -> dict[str, int]:
    from chatbot.celery import Queue, app

    depths = {}
    try:
        with app.connection_for_read() as connection:
            channel = connection.default_channel
            for queue in Queue:
                try:
                    depths[queue.value] = channel.queue_declare(queue=queue.value, passive=True).message_count
                except Exception:  # not declared yet: nothing was ever sent to it
                    depths[queue.value] = 0
    except Exception:
        log.exception("could not read the Celery queue depths")
    return depths


class ChatbotCollector:
    def collect(self):
        from chatbot.nlu.models import ModelVersion

        values = store().get_many(_all_keys())
        received = CounterMetricFamily("chatbot_messages_received", "Visitor messages stored.")
        received.add_metric([], values["messages_received"])
        yield received

        answers = CounterMetricFamily(
            "chatbot_bot_answers", "Bot answers to visitor messages, by outcome.", labels=["outcome"]
        )
        for outcome in BOT_ANSWER_OUTCOMES:
            answers.add_metric([outcome], values[f"bot_answers:{outcome}"])
        yield answers

        cumulative, buckets = 0, []
        for i, le in enumerate([*LATENCY_BUCKETS, float("inf")]):
            cumulative += values[f"latency_bucket:{i}"]
            buckets.append(("+Inf" if le == float("inf") else str(le), cumulative))
        latency = HistogramMetricFamily(
            "chatbot_reply_latency_seconds", "Visitor message stored to the bot's answer stored and pushed."
        )
        latency.add_metric([], buckets, values["latency_sum_ms"] / 1000)
        yield latency

        depth = GaugeMetricFamily("chatbot_celery_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"])
        for queue, n in queue_depths().items():
            depth.add_metric([queue], n)
        yield depth

        sockets = GaugeMetricFamily(
            "chatbot_active_websockets", "Open websockets on this server process.", labels=["kind"]
        )
        for kind in ("visitor", "agent"):
            sockets.add_metric([kind], _websockets[kind])
        yield sockets

        model = GaugeMetricFamily(
            "chatbot_intent_model_info", "The intent model version in use (value 1).", labels=["version", "model_id"]
        )
        active = ModelVersion.objects.filter(is_active=True).values_list("pk", "model_id").first()
        if active is not None:
            model.add_metric([str(active[0]), active[1]], 1)
        yield model


registry = CollectorRegistry(auto_describe=False)
registry.register(ChatbotCollector())

LOCAL_ADDRESSES = ("127.0.0.1", "::1")


def allowed(request: HttpRequest) -> bool:
    """With METRICS_TOKEN set: a matching bearer token from anywhere; without it,
    requests from this machine only."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    return request.META.get("REMOTE_ADDR") in LOCAL_ADDRESSES


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return HttpResponseForbidden("Set METRICS_TOKEN and send it as a bearer token, or scrape from this machine.\n")
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
