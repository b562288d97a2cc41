"""Anyone on the internet can reach the widget's doors: one client must not flood
them. New sessions are limited per client address (behind the proxy: the forwarded
one) and for everyone together; every websocket frame type is limited per visitor
and per address, handoffs per address whatever the session; a refused frame gets
the protocol's error frame on an open socket; sessions that never had a message
are deleted after a day; a flood of handoffs shows agents one page of the queue."""

import urllib.error
import urllib.request
import uuid
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone

from chatbot.conversations import services, tasks
from chatbot.conversations.models import Conversation, Message, Visitor
from chatbot.environment import env_rate, env_rates
from tests.conftest import LiveServer, require_real_services

# --- The settings ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["ten a minute", "10", "0/m", "10/0m", "10/w", "-1/m"])
def test_a_rate_that_is_not_one_stops_the_start_with_what_to_set(monkeypatch, value):
    monkeypatch.setenv("SESSION_RATE_PER_IP", value)
    with pytest.raises(ImproperlyConfigured, match="Set SESSION_RATE_PER_IP like 10/m"):
        env_rate("SESSION_RATE_PER_IP", default="10/m")


def test_frame_rates_replace_only_the_named_defaults_and_refuse_unknown_frame_types(monkeypatch):
    defaults = {"identify": "5/m", "typing": "60/m"}
    monkeypatch.setenv("WS_FRAME_RATES", " typing = 120/m ")
    assert env_rates("WS_FRAME_RATES", defaults, keys=list(defaults)) == {"identify": "5/m", "typing": "120/m"}
    for bad in ("typing:120/m", "launch_rockets=1/s", "typing=fast"):
        monkeypatch.setenv("WS_FRAME_RATES", bad)
        with pytest.raises(ImproperlyConfigured, match="with NAME one of identify or typing"):
            env_rates("WS_FRAME_RATES", defaults, keys=list(defaults))


# --- POST /api/widget/sessions ---------------------------------------------------------


def new_session(client: Client, address: str):
    return client.post("/api/widget/sessions", "{}", content_type="application/json", REMOTE_ADDR=address)


def test_new_sessions_from_one_address_are_refused_past_the_limit_with_a_json_429(db, settings):
    settings.SESSION_RATE_PER_IP = "3/m"
    client = Client()
    assert [new_session(client, "203.0.113.7").status_code for _ in range(3)] == [201, 201, 201]
    refused = new_session(client, "203.0.113.7")
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "rate_limited" and "your network" in body["message"]
    assert 1 <= body["retry_after"] <= 60 and refused["Retry-After"] == str(body["retry_after"])
    assert Visitor.objects.count() == 3  # nothing was made for the refused one
    assert new_session(client, "198.51.100.9").status_code == 201  # another client is not affected


def test_new_sessions_are_limited_for_everyone_together(db, settings):
    settings.SESSION_RATE_PER_IP, settings.SESSION_RATE_GLOBAL = "100/m", "4/m"
    client = Client()
    assert [new_session(client, f"203.0.113.{n}").status_code for n in range(1, 5)] == [201] * 4
    refused = new_session(client, "203.0.113.200")
    assert refused.status_code == 429 and "too many new sessions" in refused.json()["message"]


def test_a_client_over_its_own_limit_does_not_use_up_everyones(db, settings):
    settings.SESSION_RATE_PER_IP, settings.SESSION_RATE_GLOBAL = "2/m", "5/m"
    client = Client()
    flood = [new_session(client, "203.0.113.66").status_code for _ in range(20)]
    assert flood.count(201) == 2
    others = [new_session(client, f"198.51.100.{n}").status_code for n in range(1, 4)]
    assert others == [201, 201, 201]


def test_ipv6_clients_are_counted_by_their_64_network(db, settings):
    settings.SESSION_RATE_PER_IP = "2/m"
    client = Client()
    assert new_session(client, "2001:db8:1:2::1").status_code == 201
    assert new_session(client, "2001:db8:1:2::abcd").status_code == 201
    assert new_session(client, "2001:db8:1:2:ffff::9").status_code == 429  # same /64, another address
    assert new_session(client, "2001:db8:1:3::1").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_behind_the_proxy_the_forwarded_address_is_limited_and_spoofing_it_gains_nothing():
    """uvicorn believes X-Forwarded-For only from FORWARDED_ALLOW_IPS (docs/security.md)."""
    require_real_services()

    def post(url: str, forwarded_for: str) -> int:
        request = urllib.request.Request(
            url + "/api/widget/sessions", data=b"{}", method="POST", headers={"X-Forwarded-For": forwarded_for}
        )
        try:
            return urllib.request.urlopen(request, timeout=10).status
        except urllib.error.HTTPError as error:
            return error.code

    limits = {"SESSION_RATE_PER_IP": "2/m", "SESSION_RATE_GLOBAL": "1000/m"}
    behind_proxy = LiveServer(env_extra={**limits, "FORWARDED_ALLOW_IPS": "127.0.0.1"}, args=["--no-workers"])
    try:
        # The proxy on 127.0.0.1 forwards two clients: each has its own budget.
        assert [post(behind_proxy.url, "203.0.113.7") for _ in range(3)] == [201, 201, 429]
        assert [post(behind_proxy.url, "198.51.100.9") for _ in range(3)] == [201, 201, 429]
    finally:
        behind_proxy.stop()
    # A server that does not trust this peer as a proxy ignores the header: a client
    # cannot make up a new address per request.
    direct = LiveServer(env_extra={**limits, "FORWARDED_ALLOW_IPS": "10.255.255.1"}, args=["--no-workers"])
    try:
        assert [post(direct.url, f"203.0.113.{n}") for n in range(10, 13)] == [201, 201, 429]
    finally:
        direct.stop()


# --- Websocket frames ------------------------------------------------------------------

FRAMES = {
    "identify": lambda n: {"type": "identify", "name": f"Name {n}"},
    "feedback": lambda n: {"type": "feedback", "message_id": 999999, "value": "up"},
    "article_feedback": lambda n: {"type": "article_feedback", "message_id": 999999, "helpful": True},
    "rating": lambda n: {"type": "rating", "score": 5},
    "typing": lambda n: {"type": "typing", "on": n % 2 == 0},
    "handoff_request": lambda n: {"type": "handoff_request"},
    "resume": lambda n: {"type": "resume", "after_seq": 0},
    "ping": lambda n: {"type": "ping"},
}


@pytest.mark.parametrize("kind", list(FRAMES))
@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_every_frame_type_is_limited_per_visitor_with_an_error_frame_on_an_open_socket(
    kind, visitor, chat_from, refusal_after, settings
):
    settings.WS_FRAME_RATES = {**django_settings.WS_FRAME_RATES, kind: "2/m"}
    communicator, _ = await chat_from(visitor, "203.0.113.7")
    for n in range(3):
        await communicator.send_json_to(FRAMES[kind](n))
    frames = await refusal_after(communicator)
    refusal = frames[-1]
    assert refusal["frame"] == kind and 1 <= refusal["retry_after"] <= 60
    assert not [f for f in frames[:-1] if f.get("code") == "rate_limited"]
    # Refused again at once, and the socket stays open for other frames.
    await communicator.send_json_to(FRAMES[kind](3))
    assert (await refusal_after(communicator))[-1]["frame"] == kind
    other = "resume" if kind == "ping" else "ping"
    await communicator.send_json_to(FRAMES[other](0))
    answer = await communicator.receive_json_from(timeout=5)
    while answer["type"] not in ("pong", "history"):  # handoff frames may still be arriving
        answer = await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_refused_identify_changes_nothing(visitor, chat_from, refusal_after, settings):
    settings.WS_FRAME_RATES = {**django_settings.WS_FRAME_RATES, "identify": "2/m"}
    communicator, _ = await chat_from(visitor, "203.0.113.7")
    for n in range(3):
        await communicator.send_json_to({"type": "identify", "name": f"Name {n}"})
    frames = await refusal_after(communicator)
    assert [f["type"] for f in frames] == ["identify_ack", "identify_ack", "error"]
    name = await database_sync_to_async(lambda: Visitor.objects.get(pk=visitor.conversation.visitor_id).name)()
    assert name == "Name 1"
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_new_sessions_do_not_bring_a_new_frame_budget_for_the_address(
    new_visitor, chat_from, refusal_after, settings
):
    settings.WS_RATE_PER_IP = "5/m"
    first, second = await database_sync_to_async(new_visitor)(), await database_sync_to_async(new_visitor)()
    socket_one, _ = await chat_from(first, "203.0.113.7")
    socket_two, _ = await chat_from(second, "203.0.113.7")
    for _ in range(3):
        await socket_one.send_json_to({"type": "ping"})
        assert (await socket_one.receive_json_from(timeout=5))["type"] == "pong"
    for _ in range(2):
        await socket_two.send_json_to({"type": "ping"})
        assert (await socket_two.receive_json_from(timeout=5))["type"] == "pong"
    await socket_two.send_json_to({"type": "ping"})
    assert (await refusal_after(socket_two))[-1]["frame"] == "ping"
    # Another client is not affected.
    third = await database_sync_to_async(new_visitor)()
    socket_three, _ = await chat_from(third, "198.51.100.9")
    await socket_three.send_json_to({"type": "ping"})
    assert (await socket_three.receive_json_from(timeout=5))["type"] == "pong"
    for socket in (socket_one, socket_two, socket_three):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_handoff_requests_are_limited_per_address_whatever_the_session(
    new_visitor, chat_from, refusal_after, settings
):
    settings.HANDOFF_RATE_PER_IP = "2/h"
    visitors = [await database_sync_to_async(new_visitor)() for _ in range(3)]
    for visitor in visitors[:2]:
        communicator, _ = await chat_from(visitor, "203.0.113.7")
        await communicator.send_json_to({"type": "handoff_request"})
        frame = await communicator.receive_json_from(timeout=5)
        assert frame.get("code") != "rate_limited"
        await communicator.disconnect()
    communicator, _ = await chat_from(visitors[2], "203.0.113.7")
    await communicator.send_json_to({"type": "handoff_request"})
    refusal = (await refusal_after(communicator))[-1]
    assert refusal["frame"] == "handoff_request" and refusal["retry_after"] > 60
    status = await database_sync_to_async(lambda: Conversation.objects.get(pk=visitors[2].conversation.pk).status)()
    assert status == Conversation.Status.BOT  # not in the agents' queue
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_messages_are_limited_per_address_and_resends_are_not_counted(
    new_visitor, chat_from, refusal_after, send_message, settings
):
    settings.WS_MESSAGE_RATE_PER_IP = "2/m"
    first, second = await database_sync_to_async(new_visitor)(), await database_sync_to_async(new_visitor)()
    socket_one, _ = await chat_from(first, "203.0.113.7")
    sent = str(uuid.uuid4())
    assert (await send_message(socket_one, "where is my order?", sent))["type"] == "ack"
    await socket_one.disconnect()
    socket_two, _ = await chat_from(second, "203.0.113.7")
    assert (await send_message(socket_two, "hello", str(uuid.uuid4())))["type"] == "ack"
    # The first visitor reconnects and resends: answered with its ack, not counted.
    socket_one, _ = await chat_from(first, "203.0.113.7")
    for _ in range(3):
        assert (await send_message(socket_one, "where is my order?", sent))["type"] == "ack"
    refused_id = str(uuid.uuid4())
    await socket_one.send_json_to({"type": "user_message", "text": "one more", "client_msg_id": refused_id})
    refusal = (await refusal_after(socket_one))[-1]
    assert refusal["frame"] == "user_message" and refusal["client_msg_id"] == refused_id
    assert await database_sync_to_async(Message.objects.filter(client_msg_id=refused_id).exists)() is False
    # While refused, a resend of one acked on this socket still gets its ack; new ones do not.
    assert (await send_message(socket_one, "where is my order?", sent))["type"] == "ack"
    assert (await send_message(socket_one, "and another"))["code"] == "rate_limited"
    for socket in (socket_one, socket_two):
        await socket.disconnect()


# --- Sessions that never had a message ---------------------------------------------------


def test_sessions_that_never_had_a_message_are_deleted_after_a_day_and_no_other(new_visitor, say, agent, settings):
    settings.UNUSED_SESSION_TTL_HOURS = 24
    empty, talked, handed_off, identified, recent, used_today = (new_visitor() for _ in range(6))
    say(talked, "hello")
    services.hand_off(handed_off.conversation.pk, "requested")
    Visitor.objects.filter(pk=identified.conversation.visitor_id).update(email="grace@example.com")
    day_ago = timezone.now() - timedelta(hours=25)
    Visitor.objects.exclude(pk=recent.conversation.visitor_id).update(created_at=day_ago)
    # Its token was used an hour ago (each use renews it): not unused for a day.
    Visitor.objects.filter(pk=used_today.conversation.visitor_id).update(
        token_expires_at=timezone.now() - timedelta(hours=1) + timedelta(days=settings.VISITOR_TOKEN_TTL_DAYS)
    )
    assert tasks.delete_unused_sessions() == 1
    assert not Visitor.objects.filter(pk=empty.conversation.visitor_id).exists()
    assert not Conversation.objects.filter(pk=empty.conversation.pk).exists()
    kept = [talked, handed_off, identified, recent, used_today]
    assert Conversation.objects.filter(pk__in=[v.conversation.pk for v in kept]).count() == 5
    assert tasks.delete_unused_sessions() == 0  # safe to run twice


def test_the_cleanup_runs_from_the_scheduler_hourly(settings):
    entry = django_settings.CELERY_BEAT_SCHEDULE["delete-unused-sessions"]
    assert entry["task"] == "chatbot.conversations.tasks.delete_unused_sessions" and entry["schedule"] == 3600.0


# --- The agents' queue under a flood of handoffs -------------------------------------------


def test_a_flood_of_handoffs_shows_agents_one_page_of_the_queue_and_how_many_more(new_visitor, agent, settings):
    settings.QUEUE_PAGE_SIZE = 25
    waiting = [new_visitor() for _ in range(60)]
    start = timezone.now() - timedelta(hours=1)
    for n, visitor in enumerate(waiting):
        Conversation.objects.filter(pk=visitor.conversation.pk).update(
            status=Conversation.Status.WAITING_FOR_AGENT, waiting_since=start + timedelta(seconds=n)
        )
    client = Client()
    client.force_login(agent)
    first = client.get("/agent/queue/").content.decode()
    assert first.count('class="queue-item queue-waiting"') == 25
    assert str(waiting[0].conversation.pk) in first and str(waiting[25].conversation.pk) not in first
    assert 'data-waiting-count="60"' in first and "35 more" in first
    second = client.get("/agent/queue/?waiting_page=2").content.decode()
    assert second.count('class="queue-item queue-waiting"') == 25 and "10 more" in second
    assert str(waiting[25].conversation.pk) in second
    last = client.get("/agent/queue/?waiting_page=3").content.decode()
    assert last.count('class="queue-item queue-waiting"') == 10 and "more</a>" not in last
    # A page that is not a number shows the first one.
    assert client.get("/agent/queue/?waiting_page=x").content.decode().count("queue-waiting") == 25
    # The dashboard page renders the same cap.
    assert client.get("/agent/").content.decode().count('class="queue-item queue-waiting"') == 25


# --- The counters ------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "expected"), [("10/m", (10, 60)), ("5/30s", (5, 30)), ("600/h", (600, 3600))])
def test_a_rate_reads_as_a_count_per_period(rate, expected):
    from chatbot.conversations.services import limits

    assert limits.split_rate(rate) == expected


def test_the_counters_of_a_frame_count_together_each_in_its_own_window():
    from chatbot.conversations.services import limits

    for expected in (1, 2, 3):
        usages = limits.count(("test:a", "k", "2/m"), ("test:b", "k", "5/h"))
        assert [u.count for u in usages] == [expected, expected]
    over, under = usages
    assert over.over and not under.over
    assert 1 <= over.retry_after <= 60 and 1 <= under.retry_after <= 3600
    # another key has its own count
    assert limits.count(("test:a", "other", "2/m"))[0].count == 1
