"""Fixtures of the threat list: the widget's socket as seen from one client address,
and a small real reply model artifact."""

from pathlib import Path

import pytest

TOY_REPLIES = {
    "where is my order": "Let me check the tracking for you.",
    "i want a refund": "I can start a refund now.",
    "how do i reset my password": "Use the reset link on the login page.",
    "do you ship abroad": "Yes, we ship to most countries.",
}


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


@pytest.fixture(scope="session")
def reply_artifact(tmp_path_factory) -> Path:
    """A real (retrieval) reply model directory, checksummed as the trainer writes it."""
    from inference.replies import ReplyPair, ReplyTrainConfig, Turn, train_reply_model

    pairs = [ReplyPair(context=(Turn("customer", c),), reply=r) for c, r in TOY_REPLIES.items()]
    out = tmp_path_factory.mktemp("security-replies") / "retrieval"
    return train_reply_model(pairs, out, ReplyTrainConfig(kind="retrieval"))
