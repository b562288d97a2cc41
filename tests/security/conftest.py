"""Fixtures of the security tests: the widget's socket as seen from one client address."""

import pytest


@pytest.fixture
def chat_from():
    """`socket, history = await chat_from(visitor, "203.0.113.7")`: the widget's socket,
    authenticated, from that client address (what uvicorn puts in the scope, behind
    the proxy from X-Forwarded-For)."""
    from channels.testing import WebsocketCommunicator

    from chatbot.asgi import application
    from tests.conftest import ORIGIN

    async def chat_from(visitor, address: str):
        communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", ORIGIN.encode())])
        communicator.scope["client"] = (address, 50000)  # read when the application starts, on connect
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_json_to({"type": "auth", "token": visitor.token})
        history = await communicator.receive_json_from(timeout=5)
        assert history["type"] == "history"
        return communicator, history

    return chat_from


@pytest.fixture
def refusal_after():
    """`frames = await refusal_after(socket)`: the frames up to the first `rate_limited`
    error (which is last); fails when none comes within `within` seconds."""

    async def refusal_after(communicator, within: float = 5) -> list[dict]:
        frames = []
        while True:
            frame = await communicator.receive_json_from(timeout=within)
            frames.append(frame)
            if frame["type"] == "error" and frame["code"] == "rate_limited":
                return frames

    return refusal_after
