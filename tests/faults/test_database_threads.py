"""One slow database call (a locked conversation row) does not hold up other
visitors' websockets in the same server process."""

import asyncio
import time

import pytest

from chatbot.conversations import services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_a_slow_auth_does_not_delay_another_visitors_auth(visitor, other_visitor, monkeypatch, authed):
    real_authenticate = services.authenticate

    def authenticate(token, conversation_id=None):
        if token == visitor.token:
            time.sleep(3)  # as if its conversation row were locked by another transaction
        return real_authenticate(token, conversation_id)

    monkeypatch.setattr(services, "authenticate", authenticate)
    slow = asyncio.create_task(authed(visitor))
    await asyncio.sleep(0.3)  # the slow one holds its database thread now
    started = time.monotonic()
    fast, _ = await authed(other_visitor)
    assert time.monotonic() - started < 1.5
    assert not slow.done()
    slow_communicator, _ = await slow
    await fast.disconnect()
    await slow_communicator.disconnect()
