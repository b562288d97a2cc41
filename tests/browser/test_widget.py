"""The chat widget in a real browser: embedded with one script tag, talking to
the product running as a server process, on its own origin and on others."""

import json
import re

import pytest
from django.db import transaction
from playwright.sync_api import Page, expect

from tests.browser.conftest import EmbedSite, Widget, eventually, screenshot
from tests.conftest import REPO, LiveServer

pytestmark = pytest.mark.browser

AXE = REPO / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
ORDER_QUESTION = "where is my order?"

# Each payload sets window.__xss if it ever runs.
XSS = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=2</script>",
    '"><svg onload="window.__xss=3">',
    '<iframe srcdoc="<script>parent.__xss=4</script>"></iframe>',
    '<a href="javascript:window.__xss=5">click me</a>',
    "<b>bold</b> &lt;b&gt; {{7*7}} ${7*7}",
]


# --- A customer's site on another origin -------------------------------------


def embed_page(server_url: str, *, csp: bool = False, extra_head: str = "") -> str:
    ws = server_url.replace("http", "ws", 1)
    policy = (
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'self'; "
        f'script-src {server_url}; connect-src {server_url} {ws}">'
        if csp
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{policy}{extra_head}<title>Another shop</title></head>
<body>
  <h1>Another shop</h1>
  <p class="msg"><span class="bubble" id="own">The shop's own bubble</span></p>
  <script src="{server_url}/static/widget/widget.js" data-server="{server_url}"
          data-title="Acme help" data-color="#0f766e" async></script>
</body></html>"""


# A host page doing its worst to everything it can reach.
HOSTILE_CSS = """
* { font-family: serif !important; font-size: 31px !important; color: red !important; }
chat-widget, div { display: none !important; }
button { background: hotpink !important; border-radius: 0 !important; }
"""


@pytest.fixture
def foreign_site():
    # 127.0.0.2 is loopback too, but neither in ALLOWED_HOSTS nor in WIDGET_ORIGINS.
    site = EmbedSite("127.0.0.2", "127.0.0.2")
    yield site
    site.close()


def answers(intent: str) -> re.Pattern:
    from chatbot.nlu.models import Response

    texts = list(Response.objects.filter(intent__name=intent).values_list("text", flat=True))
    assert texts, f"the demo content has no response for {intent}"
    return re.compile("^(" + "|".join(re.escape(t) for t in texts) + ")$")


def run_axe(page: Page) -> list[dict]:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci --prefix frontend` (make test does)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                 nodes: v.nodes.map(n => n.target.join(" "))}));
        }"""
    )
    return [v for v in violations if v["impact"] in ("serious", "critical")]


# --- The tests -------------------------------------------------------------------


def test_visitor_gets_the_bots_answer_and_the_same_history_after_reload(page: Page, server: LiveServer):
    widget = Widget(page)
    page.goto(server.url + "/")
    widget.open()
    widget.send(ORDER_QUESTION)

    expect(widget.bubbles("visitor")).to_have_text([ORDER_QUESTION])
    expect(widget.bubbles("bot")).to_have_count(1)
    expect(widget.bubbles("bot").first).to_have_text(answers("order_status"))
    before = widget.all_messages()
    assert len(before) == 2

    # A reload draws from the cache, then resumes with last_seq: nothing new, nothing twice.
    page.reload()
    widget.open()
    widget.wait_online()
    assert widget.all_messages() == before

    # Forget last_seq: the server sends the whole history again, and the widget drops what it shows already.
    page.evaluate(
        """() => { for (const key of Object.keys(localStorage).filter(k => k.startsWith("chatwidget:"))) {
                     const s = JSON.parse(localStorage.getItem(key)); s.lastSeq = 0; localStorage.setItem(key, JSON.stringify(s)); } }"""
    )
    page.reload()
    widget.open()
    widget.wait_online()
    page.wait_for_timeout(300)
    assert widget.all_messages() == before

    # With no cache at all, the history alone draws the same conversation.
    page.evaluate(
        """() => { for (const key of Object.keys(localStorage).filter(k => k.startsWith("chatwidget:"))) {
                     const s = JSON.parse(localStorage.getItem(key)); s.lastSeq = 0; s.messages = [];
                     localStorage.setItem(key, JSON.stringify(s)); } }"""
    )
    page.reload()
    widget.open()
    widget.wait_online()
    expect(widget.page.locator("chat-widget .log .msg")).to_have_count(2)
    assert widget.all_messages() == before


def test_reconnects_after_a_server_restart_and_sends_the_queued_message_once(page: Page, start_server):
    from chatbot.conversations.models import Message

    server = start_server()
    widget = Widget(page)
    page.goto(server.url + "/")
    widget.open()
    widget.send("hello")
    expect(widget.bubbles("bot")).to_have_count(1)

    port = server.port
    server.stop()
    expect(widget.root).not_to_have_attribute("data-connection", "online")
    expect(widget.banner).to_be_visible()
    expect(widget.banner).to_contain_text(re.compile("Reconnecting|Connecting|can't be reached"))

    widget.send(ORDER_QUESTION)
    pending = page.locator("chat-widget .msg.visitor.pending")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("Waiting to send")

    start_server(port=port)
    widget.wait_online(timeout=60_000)
    expect(widget.bubbles("bot")).to_have_count(2, timeout=30_000)
    expect(widget.bubbles("bot").last).to_have_text(answers("order_status"))
    expect(pending).to_have_count(0)
    page.wait_for_timeout(1500)  # room for a duplicate to show up, if there were one

    assert Message.objects.filter(sender="visitor", text=ORDER_QUESTION).count() == 1
    assert Message.objects.filter(sender="bot").count() == 2
    expect(widget.bubbles("visitor")).to_have_text(["hello", ORDER_QUESTION])


def test_quick_reply_thumbs_down_handoff_and_rating_when_closed(page: Page, server: LiveServer):
    from chatbot.conversations.models import Conversation, Message
    from chatbot.nlu.models import Feedback

    widget = Widget(page)
    page.goto(server.url + "/")
    widget.open()
    widget.send(ORDER_QUESTION)
    expect(widget.bubbles("bot").first).to_have_text(answers("order_status"))

    chip = page.locator("chat-widget .chip", has_text="Shipping times")
    chip.click()
    expect(widget.bubbles("visitor")).to_have_text([ORDER_QUESTION, "Shipping times"])
    eventually(
        lambda: Message.objects.filter(sender="visitor", text="Shipping times").exists(), message="quick reply stored"
    )
    expect(widget.bubbles("bot")).to_have_count(2)

    thumbs_down = page.locator("chat-widget .log .msg.bot").first.get_by_role("button", name="Not helpful")
    thumbs_down.click()
    expect(thumbs_down).to_have_attribute("aria-pressed", "true")
    eventually(lambda: Feedback.objects.filter(source="thumbs_down").exists(), message="thumbs down recorded")
    assert Feedback.objects.get(source="thumbs_down").message.text == ORDER_QUESTION

    page.locator("chat-widget .chip.human").click()
    eventually(lambda: Conversation.objects.get().status == Conversation.Status.WAITING_FOR_AGENT, message="handed off")
    expect(widget.status_line).to_have_text("Waiting for a member of our team")
    expect(page.locator("chat-widget .log .msg.system")).to_have_count(1)
    expect(page.locator("chat-widget .chip.human")).to_have_count(0)

    # An agent closes the conversation: the widget offers the rating.
    Conversation.objects.update(status=Conversation.Status.CLOSED)
    page.reload()
    widget.open()
    widget.wait_online()
    expect(widget.status_line).to_have_text("This conversation has ended")
    expect(widget.input).to_be_hidden()
    page.get_by_role("button", name="5 out of 5").click()
    expect(page.locator("chat-widget .card")).to_contain_text("Thanks for your rating!")
    eventually(lambda: Conversation.objects.get().csat == 5, message="rating stored")

    # A new chat: the same visitor, a new conversation.
    page.get_by_role("button", name="Start a new chat").click()
    widget.wait_online()
    expect(page.locator("chat-widget .log .msg")).to_have_count(0)
    expect(widget.input).to_be_visible()
    assert Conversation.objects.count() == 2


def test_every_text_renders_as_text_and_runs_nothing(page: Page, server: LiveServer):
    from django.contrib.auth import get_user_model

    from chatbot.conversations import services
    from chatbot.conversations.models import Conversation, Message

    widget = Widget(page)
    page.goto(server.url + "/")
    widget.open()
    for sent, payload in enumerate(XSS, start=1):
        widget.send(payload)
        # One at a time: each is stored and dealt with by the bot before the next (it
        # answers, or, once the visitor waits for a person, stays quiet: issue 14).
        expect(widget.bubbles("visitor")).to_have_count(sent)
        eventually(
            lambda sent=sent: (
                Message.objects.filter(sender="visitor").count() == sent
                and not Message.objects.filter(sender="visitor", confidence__isnull=True).exists()
            ),
            message="message answered",
        )
    expect(widget.bubbles("visitor")).to_have_text(XSS)

    # Agent, bot and quick-reply texts arrive through history: put payloads in all of them.
    agent = get_user_model().objects.create_user("mallory", first_name=XSS[0])
    with transaction.atomic():
        conversation = services.lock_conversation(Conversation.objects.get().pk)
        conversation.status = Conversation.Status.WITH_AGENT
        conversation.save(update_fields=["status"])
        services.append_message(conversation, sender="agent", author=agent, text=XSS[1])
        services.append_message(conversation, sender="bot", text=XSS[3], quick_replies=[XSS[2]])
    page.reload()
    widget.open()
    widget.wait_online()
    expect(page.locator("chat-widget .log .msg.agent .bubble")).to_have_text(XSS[1])
    expect(page.locator("chat-widget .log .msg.agent .name")).to_have_text(XSS[0])
    expect(widget.status_line).to_have_text(f"You are chatting with {XSS[0]}")
    expect(widget.bubbles("bot").last).to_have_text(XSS[3])
    chip = page.locator("chat-widget .chip")
    expect(chip).to_have_text([XSS[2]])
    chip.click()
    expect(widget.bubbles("visitor").last).to_have_text(XSS[2])

    page.wait_for_timeout(500)
    assert page.evaluate("window.__xss") is None
    assert widget.shadow("return root.querySelectorAll('img, script, iframe, a, b, [onload], [onerror]').length") == 0
    assert page.locator("img, iframe, b").count() == 0


def test_embeds_on_an_allowed_origin_under_a_strict_csp_and_a_hostile_stylesheet(
    page: Page, server: LiveServer, allowed_site: EmbedSite
):
    from chatbot.conversations.models import Visitor

    allowed_site.pages["/"] = (
        "text/html",
        embed_page(server.url, csp=True, extra_head='<link rel="stylesheet" href="/hostile.css">'),
    )
    allowed_site.pages["/hostile.css"] = ("text/css", HOSTILE_CSS)
    page.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    widget = Widget(page)
    page.goto(allowed_site.origin + "/")
    assert page.evaluate("location.origin") == allowed_site.origin != server.url

    widget.open()
    expect(page.get_by_role("dialog", name="Acme help")).to_be_visible()
    page.evaluate("ChatWidget.on('message', m => (window.__heard = window.__heard || []).push(m.sender))")
    widget.send(ORDER_QUESTION)
    expect(widget.bubbles("bot").first).to_have_text(answers("order_status"))
    expect(page.locator("chat-widget .log .msg.bot a")).to_have_attribute("href", "https://northwind.example/track")
    assert page.evaluate("window.__heard") == ["bot"]

    page.evaluate("ChatWidget.identify({name: 'Ada Lovelace', email: 'ada@example.com'})")
    eventually(
        lambda: Visitor.objects.filter(name="Ada Lovelace", email="ada@example.com").exists(), message="identify"
    )

    # The page's CSS does not reach inside, and the widget's does not leak out.
    assert widget.shadow("return getComputedStyle(root.querySelector('.log .bubble')).fontSize") == "15px"
    assert widget.shadow("return getComputedStyle(root.querySelector('.launcher')).borderTopLeftRadius") == "50%"
    assert (
        widget.shadow("return getComputedStyle(root.querySelector('.launcher')).backgroundColor") == "rgb(15, 118, 110)"
    )
    assert page.evaluate("getComputedStyle(document.getElementById('own')).paddingTop") == "0px"
    assert page.evaluate("window.__csp") == []


def test_an_origin_not_allowed_gets_a_clear_error_and_no_socket(
    page: Page, server: LiveServer, foreign_site: EmbedSite
):
    from chatbot.conversations.models import Visitor

    foreign_site.pages["/"] = ("text/html", embed_page(server.url))
    widget = Widget(page)
    page.goto(foreign_site.origin + "/")
    widget.open()
    expect(widget.banner).to_have_attribute("data-state", "unavailable")
    expect(widget.banner).to_contain_text("The chat can't be reached from this page right now.")
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    assert Visitor.objects.count() == 0  # the CORS preflight stopped the session POST

    # Even with a valid token, the websocket handshake is refused for this origin.
    from tests.conftest import VisitorSession

    token = VisitorSession().token
    outcome = page.evaluate(
        """([url, token]) => new Promise(resolve => {
            const ws = new WebSocket(url);
            ws.onopen = () => ws.send(JSON.stringify({type: "auth", token, last_seq: 0}));
            ws.onmessage = e => resolve("answered " + e.data.slice(0, 20));
            ws.onclose = e => resolve("closed " + e.code);
        })""",
        [server.url.replace("http", "ws", 1) + "/ws/chat/", token],
    )
    assert outcome == "closed 1006"


def test_a_refused_message_comes_back_with_the_reason_and_the_limit_is_enforced(page: Page, start_server):
    from chatbot.conversations.models import Message

    server = start_server(RATE_LIMIT_MESSAGES="2", RATE_LIMIT_WINDOW_S="60")
    widget = Widget(page)
    page.goto(server.url + "/")
    widget.open()
    widget.wait_online()
    for text in ("first", "second", "third, one too many"):
        widget.send(text)

    expect(widget.error).to_have_text(re.compile("too quickly"))
    expect(widget.input).to_have_value("third, one too many")
    expect(widget.bubbles("visitor")).to_have_text(["first", "second"])
    assert sorted(Message.objects.filter(sender="visitor").values_list("text", flat=True)) == ["first", "second"]

    # Over 2,000 characters: counted, refused before sending, nothing lost.
    widget.input.fill("x" * 2010)
    counter = page.locator("chat-widget .count")
    expect(counter).to_have_text("2010 / 2000")
    expect(counter).to_have_class(re.compile("over"))
    expect(page.locator("chat-widget .send")).to_have_attribute("aria-disabled", "true")
    widget.input.press("Enter")
    expect(widget.error).to_have_text("Your message is 10 characters too long.")
    expect(widget.input).to_have_value("x" * 2010)
    expect(widget.bubbles("visitor")).to_have_count(2)


def test_keyboard_screen_reader_and_phone_use_with_no_serious_axe_violations(page: Page, server: LiveServer):
    from chatbot.conversations.models import Conversation

    widget = Widget(page)
    page.goto(server.url + "/")
    page.wait_for_function("window.ChatWidget")
    active = "return root.activeElement && (root.activeElement.id || root.activeElement.className)"

    # Keyboard only: Tab to the launcher, Enter opens, focus lands in the input.
    page.keyboard.press("Tab")
    assert widget.shadow(active) == "launcher"
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog", name="Chat with us")).to_be_visible()
    assert widget.shadow(active) == "cw-input"
    page.keyboard.type(ORDER_QUESTION)
    page.keyboard.press("Shift+Enter")
    expect(widget.input).to_have_value(ORDER_QUESTION + "\n")
    page.keyboard.press("Backspace")
    page.keyboard.press("Enter")
    expect(widget.bubbles("bot").first).to_have_text(answers("order_status"))
    log = page.get_by_role("log")
    expect(log).to_have_attribute("aria-live", "polite")

    assert run_axe(page) == []
    screenshot(page, "widget-desktop")

    page.keyboard.press("Escape")
    expect(widget.panel).to_be_hidden()
    assert widget.shadow(active) == "launcher"

    # A phone: the panel takes the whole screen.
    page.set_viewport_size({"width": 360, "height": 740})
    page.keyboard.press("Enter")
    expect(widget.panel).to_be_visible()
    box = widget.panel.bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 360, 740)
    assert run_axe(page) == []
    screenshot(page, "widget-phone")

    # End chat, then rate with the keyboard.
    page.get_by_role("button", name="End chat").click()
    expect(page.get_by_role("group", name="Rate this conversation")).to_be_visible()
    expect(page.get_by_role("button", name="End chat")).to_be_hidden()
    expect(widget.input).to_be_hidden()
    assert run_axe(page) == []
    assert widget.shadow("return root.activeElement.getAttribute('aria-label')") == "1 out of 5"
    for _ in range(3):
        page.keyboard.press("Tab")
    assert widget.shadow("return root.activeElement.getAttribute('aria-label')") == "4 out of 5"
    page.keyboard.press("Enter")
    eventually(lambda: Conversation.objects.get().csat == 4, message="rating stored")


# --- A reply whose live push was lost is not a permanent gap: the widget sees the
# jump in seq and asks the server for what it missed (a `resume` frame).


def test_widget_fetches_a_reply_whose_live_push_was_lost(page: Page, server):
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
