"""Talking to the visitor's websocket in-process (channels' WebsocketCommunicator)."""

import uuid

from channels.testing import WebsocketCommunicator

from chatbot.asgi import application
from tests.conftest import ORIGIN


async def authed(visitor, last_seq: int = 0) -> tuple[WebsocketCommunicator, dict]:
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", ORIGIN.encode())])
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    await communicator.send_json_to({"type": "auth", "token": visitor.token, "last_seq": last_seq})
    history = await communicator.receive_json_from(timeout=5)
    assert history["type"] == "history"
    return communicator, history


async def send_message(communicator, text: str, client_msg_id: str | None = None) -> dict:
    await communicator.send_json_to(
        {"type": "user_message", "text": text, "client_msg_id": client_msg_id or str(uuid.uuid4())}
    )
    return await communicator.receive_json_from(timeout=5)


async def receive_until(communicator, frame_type: str, within: float = 20) -> list[dict]:
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=within)
        frames.append(frame)
        if frame["type"] == frame_type:
            return frames
