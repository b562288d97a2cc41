"""A large request body is refused with a JSON 413 before it is read."""

import json

import pytest
from asgiref.testing import ApplicationCommunicator

from chatbot.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

CHUNK = 64 * 1024


async def post_in_chunks(path: str, chunks: int, content_length: int | None = None) -> tuple[dict, dict, int]:
    """POST `chunks` chunks of 64 KiB; returns (response start, body, chunks the server read)."""
    headers = [(b"content-type", b"application/json"), (b"origin", b"http://127.0.0.1:8000")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b"",
             "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 1)}  # fmt: skip
    communicator = ApplicationCommunicator(application, scope)
    for n in range(chunks):
        await communicator.send_input({"type": "http.request", "body": b" " * CHUNK, "more_body": n < chunks - 1})
    start = await communicator.receive_output(timeout=10)
    body = await communicator.receive_output(timeout=10)
    unread = 0
    while not communicator.input_queue.empty():
        communicator.input_queue.get_nowait()
        unread += 1
    await communicator.wait(timeout=5)
    return start, body, chunks - unread


async def test_a_huge_session_request_without_length_is_cut_off_with_a_json_413():
    start, body, read = await post_in_chunks("/api/widget/sessions", chunks=160)  # 10 MiB
    assert start["status"] == 413
    assert json.loads(body["body"])["error"] == "too_large"
    assert read <= 2  # 16 KiB limit: it stopped reading at the first chunk past it


async def test_a_declared_length_over_the_limit_is_refused_before_any_byte_is_read():
    start, body, read = await post_in_chunks("/api/widget/sessions", chunks=3, content_length=1000 * 1024 * 1024)
    assert start["status"] == 413 and read == 0
    assert json.loads(body["body"]) == {
        "error": "too_large",
        "message": "The request body is larger than the limit of 16384 bytes.",
    }


async def test_a_small_session_request_still_works():
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    scope = {"type": "http", "method": "POST", "path": "/api/widget/sessions", "headers": headers, "query_string": b"",
             "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 1)}  # fmt: skip
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b"{}", "more_body": False})
    start = await communicator.receive_output(timeout=10)
    assert start["status"] == 201
    await communicator.receive_output(timeout=10)
