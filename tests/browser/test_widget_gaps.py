"""A reply whose live push was lost is not a permanent gap: the widget sees the
jump in seq and asks the server for what it missed (a `resume` frame)."""

import json
import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_widget import (  # noqa: F401  (its fixtures)
    ORDER_QUESTION,
    Widget,
    _patient_expect,
    allowed_site,
    server,
    start_server,
)

pytestmark = pytest.mark.browser


def test_widget_fetches_a_reply_whose_live_push_was_lost(page: Page, server):  # noqa: F811
    dropped: list[dict] = []

    def lose_the_first_bot_reply(route) -> None:
        upstream = route.connect_to_server()

        def from_server(message) -> None:
            frame = json.loads(message) if isinstance(message, str) else {}
            if frame.get("type") == "message" and frame.get("sender") == "bot" and not dropped:
                dropped.append(frame)  # as if the push had failed on the server
                return
            route.send(message)

        upstream.on_message(from_server)
        route.on_message(lambda message: upstream.send(message))

    page.route_web_socket(re.compile(r"/ws/chat/"), lose_the_first_bot_reply)
    widget = Widget(page)
    page.goto(server.url + "/")
    widget.open()
    widget.send("hello there")
    expect(widget.bubbles("visitor")).to_have_count(1)
    for _ in range(300):  # the reply was stored and its push dropped
        if dropped:
            break
        page.wait_for_timeout(100)
    assert dropped and dropped[0]["seq"] == 2
    expect(widget.bubbles("bot")).to_have_count(0)

    # The next message's ack (seq 3) shows the gap; the widget asks for it and shows the reply.
    widget.send(ORDER_QUESTION)
    expect(widget.bubbles("bot")).to_have_count(2)
    seqs = [int(entry.split(":")[0]) for entry in widget.all_messages()]
    assert seqs == [1, 2, 3, 4]
    assert widget.bubbles("bot").first.text_content() == dropped[0]["text"]
