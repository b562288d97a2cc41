"""The agents' inbox in a real browser (issue 14): search, a transfer between two
agents that both see live, and a closed conversation's read-only transcript."""

import uuid

import pytest
from playwright.sync_api import expect

from chatbot.agents import services as agents
from chatbot.conversations import services
from chatbot.conversations.models import Conversation, Message
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser]


def log_in(context, server: str, username: str):
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(server + "/agent/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-" + username)
    page.click("button[type=submit]")
    page.wait_for_selector("#connection-dot.live")
    return page


def visitor_said(text: str) -> Conversation:
    _, conversation = services.start_session(page_url="https://shop.example/")
    services.record_visitor_message(conversation.pk, text, uuid.uuid4())
    return conversation


def test_search_transfer_between_two_agents_and_the_closed_transcript(live_server_url, browser, agent, other_agent):
    blender = visitor_said("my blender arrived broken")
    services.hand_off(blender.pk, "requested")
    visitor_said("do you ship to Norway")
    closed = visitor_said("refund for my kettle please")
    agents.take_over(closed.pk, agent)
    agents.reply(closed.pk, agent, "Your refund is on its way.")
    agents.close(closed.pk, agent)
    Conversation.objects.filter(pk=closed.pk).update(csat=4)

    alice_context = browser.new_context(viewport={"width": 1280, "height": 800})
    bob_context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        alice = log_in(alice_context, live_server_url, "alice")
        bob = log_in(bob_context, live_server_url, "bob")

        # Search over what visitors wrote.
        alice.fill("#inbox-q", "blender")
        alice.press("#inbox-q", "Enter")
        results = alice.locator(".inbox-results .queue-item")
        expect(results).to_have_count(1)
        expect(results.first).to_contain_text("my blender arrived broken")
        screenshot(alice, "inbox-search")

        # Alice takes it and transfers it to Bob; both see it move without a reload.
        results.first.click()
        alice.wait_for_selector("#conversation")
        alice.click("text=Take over")
        alice.wait_for_selector("#conversation[data-mine='1']")
        alice.reload()
        alice.wait_for_selector("#connection-dot.live")
        alice.select_option("#transfer-to", str(other_agent.pk))
        alice.click(".transfer button")
        alice.wait_for_selector("#conversation[data-mine='0']")
        expect(alice.locator(".msg-system", has_text="Bob joined the conversation.")).to_have_count(1)
        alice.click(".inbox-views a[data-view='']")
        expect(alice.locator(".queue-colleague", has_text="my blender")).to_have_count(1)
        expect(bob.locator(".queue-mine", has_text="my blender")).to_have_count(1)
        screenshot(bob, "inbox-transferred-to-bob")
        assert Message.objects.filter(
            conversation=blender, internal=True, text="Alice transferred the conversation to Bob."
        ).exists()

        # Bob's views.
        bob.click(".inbox-views a[data-view='mine']")
        expect(bob.locator(".inbox-results .queue-item")).to_have_count(1)
        screenshot(bob, "inbox-mine")

        # The closed conversation: the whole transcript, read only, with its rating.
        alice.click(".inbox-views a[data-view='closed']")
        item = alice.locator(".inbox-results .queue-item", has_text="kettle")
        expect(item).to_contain_text("Rated 4/5")
        screenshot(alice, "inbox-closed")
        item.click()
        alice.wait_for_selector("#conversation[data-status='closed']")
        expect(alice.locator("#conversation .conv-sub")).to_contain_text("Read only")
        expect(alice.locator("#transcript")).to_contain_text("Your refund is on its way.")
        expect(alice.locator("#composer-text")).to_have_count(0)
        screenshot(alice, "inbox-closed-transcript")
    finally:
        alice_context.close()
        bob_context.close()


def test_at_800px_suggestions_leave_six_messages_of_the_transcript_in_view(
    start_server, browser, agent, reply_model_dir
):
    from django.db import transaction

    from chatbot.replies.models import ReplyModelVersion

    ReplyModelVersion.objects.create(
        kind="retrieval", status=ReplyModelVersion.Status.READY, artifact_dir=str(reply_model_dir), is_active=True
    )
    # The layout is under test, not the relevance threshold: every suggestion is shown.
    server = start_server(REPLY_RETRIEVAL_MIN_SCORE="-1")
    _, conversation = services.start_session(page_url="https://shop.example/")
    history = [
        ("visitor", "Hello, I ordered a blender from you last week, order NW-204518."),
        ("bot", "Thanks! I can help with orders. What would you like to know?"),
        ("visitor", "It says delivered but nothing came, and my neighbours have not seen a parcel either."),
        ("bot", "I'm sorry to hear that. Parcels marked delivered sometimes arrive a day later."),
        ("visitor", "It has been three days now. I would like to know what happened to it."),
        ("bot", "I understand. Let me find someone from the team for you."),
        ("visitor", "Thank you. I also paid for express shipping, which did not happen."),
        ("bot", "Noted: express shipping. A person will look at both."),
        ("visitor", "And do you ship abroad? I might send the next one to my sister in Spain."),
    ]
    with transaction.atomic():
        locked = services.lock_conversation(conversation.pk)
        for sender, text in history:
            services.append_message(locked, sender=sender, text=text)
    services.hand_off(conversation.pk, "requested")

    laptop = browser.new_context(viewport={"width": 800, "height": 800})
    try:
        page = laptop.new_page()
        page.set_default_timeout(20_000)
        page.goto(server.url + "/agent/login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "pw-alice")
        page.click("button[type=submit]")
        page.wait_for_selector("#connection-dot.live")
        page.locator(".queue-waiting").first.click()
        page.click("text=Take over")
        page.wait_for_selector("#conversation[data-mine='1']")
        suggestions = page.locator("#reply-suggestions .suggestion")
        expect(suggestions.first).to_be_visible(timeout=90_000)  # the inference worker may still be starting
        expect(suggestions).to_have_count(3)
        page.wait_for_timeout(500)  # let the layout settle after the row appeared
        screenshot(page, "inbox-800px-suggestions")
        in_view = page.evaluate(
            """() => {
              const box = document.getElementById('transcript').getBoundingClientRect();
              const top = Math.max(box.top, 0), bottom = Math.min(box.bottom, window.innerHeight);
              const all = Array.from(document.querySelectorAll('#transcript .msg'));
              const seen = all.filter((m) => {
                const r = m.getBoundingClientRect();
                return r.height > 0 && r.top >= top - 1 && r.bottom <= bottom + 1;
              });
              const row = document.getElementById('reply-suggestions').getBoundingClientRect();
              const composer = document.getElementById('composer-text').getBoundingClientRect();
              return {
                count: seen.length,
                newest: seen.includes(all[all.length - 1]),
                rowHeight: row.height,
                rowInView: row.top >= 0 && row.bottom <= window.innerHeight,
                composerInView: composer.top >= 0 && composer.bottom <= window.innerHeight,
              };
            }"""
        )
        assert in_view["count"] >= 6, in_view
        assert in_view["newest"], in_view  # the newest message stays in view
        assert in_view["rowInView"] and in_view["composerInView"], in_view
        # One line: the long suggestion is cut short, not wrapped over several rows.
        assert in_view["rowHeight"] <= 40, in_view
    finally:
        laptop.close()
