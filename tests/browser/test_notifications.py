"""Agents' notifications in a real browser (issue 14): a tone and a browser notification
for a new waiting visitor and for a visitor's message in one of mine while the tab is
hidden; no notification while it is visible; the permission asked once."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Widget, eventually, log_in_agent

pytestmark = [pytest.mark.browser]

# Records every `new Notification(...)` and every tone, and lets the test hide the tab
# (headless Chromium's tab is always visible): document.hidden/visibilityState follow
# window.__hidden.
RECORDER = """
(() => {
  window.__notified = [];
  window.__asked = 0;
  window.__tones = 0;
  window.__hidden = false;
  const Real = window.Notification;
  class Recorded {
    constructor(title, options) { window.__notified.push({ title: title, body: (options || {}).body }); }
    static get permission() { return Real.permission; }
    static requestPermission() { window.__asked += 1; return Real.requestPermission(); }
  }
  window.Notification = Recorded;
  const RealAudio = window.AudioContext;
  window.AudioContext = class extends RealAudio {
    createOscillator() { window.__tones += 1; return super.createOscillator(); }
  };
  Object.defineProperty(document, "hidden", { configurable: true, get: () => window.__hidden });
  Object.defineProperty(document, "visibilityState", {
    configurable: true, get: () => (window.__hidden ? "hidden" : "visible"),
  });
})();
"""


def set_hidden(page, hidden: bool) -> None:
    page.evaluate(
        f"window.__hidden = {'true' if hidden else 'false'}; document.dispatchEvent(new Event('visibilitychange'))"
    )


def notified(page) -> list[dict]:
    return page.evaluate("window.__notified")


def tones(page) -> int:
    return page.evaluate("window.__tones")


def visitor_asks_for_a_person(browser, server: str):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    widget = Widget(page)
    page.goto(server + "/")
    widget.open()
    widget.wait_online()
    page.locator("chat-widget .chip.human").click()
    expect(page.locator("chat-widget .log .msg.system")).to_have_count(1)
    return context, widget


def test_waiting_visitor_and_message_in_mine_notify_while_hidden_never_while_visible(live_server_url, browser, agent):
    agent_context = browser.new_context(viewport={"width": 1280, "height": 800}, permissions=["notifications"])
    agent_context.add_init_script(RECORDER)
    visitors = []
    try:
        page = log_in_agent(agent_context, live_server_url)
        assert page.evaluate("Notification.permission") == "granted"

        # Visible tab: a new waiting visitor gets a tone, not a notification.
        context, first = visitor_asks_for_a_person(browser, live_server_url)
        visitors.append(context)
        expect(page.locator(".queue-waiting")).to_have_count(1)
        assert tones(page) == 1
        assert notified(page) == []

        page.locator(".queue-waiting").first.click()
        page.click("text=Take over")
        page.wait_for_selector("#conversation[data-mine='1']")
        page.locator(".inbox-views a[data-view='closed']").click()  # another view: still notified

        # Hidden tab: a message in one of mine notifies.
        set_hidden(page, True)
        first.send("are you still there?")
        eventually(lambda: len(notified(page)) >= 1, timeout=45, message="a notification")
        assert [n["title"] for n in notified(page)] == ["New message from a visitor"]

        # Hidden tab: a new waiting visitor notifies.
        context, second = visitor_asks_for_a_person(browser, live_server_url)
        visitors.append(context)
        eventually(lambda: len(notified(page)) >= 2, timeout=45, message="a second notification")
        assert notified(page)[1]["title"] == "A visitor is waiting"
        tones_hidden = tones(page)
        assert tones_hidden >= 3

        # A message in a conversation that is not mine notifies nobody.
        second.send("hello? anyone?")
        expect(second.bubbles("visitor")).to_have_count(1)
        page.wait_for_timeout(2000)
        assert len(notified(page)) == 2

        # Visible again: a message in mine does not notify.
        set_hidden(page, False)
        first.send("ok, I will wait")
        page.locator(".inbox-views a[data-view='mine']").click()
        expect(page.locator(".inbox-results .queue-item .qi-text")).to_have_text("ok, I will wait")
        page.wait_for_timeout(1000)
        assert len(notified(page)) == 2 and tones(page) == tones_hidden
    finally:
        for context in visitors:
            context.close()
        agent_context.close()


def test_permission_is_asked_once(live_server_url, browser, agent):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(RECORDER)
    try:
        page = log_in_agent(context, live_server_url)
        assert page.evaluate("Notification.permission") == "default"
        assert page.evaluate("window.__asked") == 0  # never without a click
        page.locator(".inbox-views a[data-view='mine']").click()
        page.locator(".inbox-views a[data-view='closed']").click()
        assert page.evaluate("window.__asked") == 1
        page.reload()
        page.wait_for_selector("#connection-dot.live")
        page.locator(".inbox-views a[data-view='mine']").click()
        assert page.evaluate("window.__asked") == 0  # not again after a reload
    finally:
        context.close()
