"""Knowledge-base answers in the widget, in a real browser (issue 16): a question no
intent covers is answered from the demo help center with a citation card whose link
opens the article; one the help center does not cover is offered a person; a hostile
article title and URL render as text and no link."""

import pytest
from playwright.sync_api import Page, expect

from chatbot.knowledge.models import KnowledgeIndexVersion
from tests.browser.conftest import Widget, eventually, screenshot
from tests.knowledge.conftest import DEV_SET, HELP_CENTER

pytestmark = pytest.mark.browser

COVERED = "how do I clean the cutting board"  # no intent covers it; the product-care article does
ARTICLE_URL = "https://northwind.example/help/product-care"
NOT_COVERED = "are you hiring"
HOSTILE_TITLE = '<img src=x onerror="window.__xss=1">Gift <b>wrapping</b>'


@pytest.fixture(scope="session")
def demo_index_dir(tmp_path_factory):
    """The demo help center's index, its threshold chosen as a build in the product chooses it."""
    from inference.knowledge import (
        KnowledgeIndex,
        calibrate,
        load_articles,
        load_questions,
        split_questions,
    )

    index = KnowledgeIndex.build(load_articles(HELP_CENTER))
    validation, _ = split_questions(load_questions(DEV_SET))
    calibrate(index, validation)
    return index.save(tmp_path_factory.mktemp("kb") / "demo-index")


@pytest.fixture(scope="session")
def hostile_index_dir(tmp_path_factory):
    from inference.knowledge import Article, KnowledgeConfig, KnowledgeIndex

    hostile = Article(
        "gift-wrap",
        HOSTILE_TITLE,
        "We wrap any order as a gift for EUR 3.50. Add gift wrapping at checkout.",
        "javascript:window.__xss=2",
    )
    index = KnowledgeIndex.build([hostile], KnowledgeConfig(min_words=5, max_words=60))
    index.with_threshold(-1e9, "answers everything (test)")  # every question gets the hostile article
    return index.save(tmp_path_factory.mktemp("kb") / "hostile-index")


def serve_index(artifact_dir) -> KnowledgeIndexVersion:
    return KnowledgeIndexVersion.objects.create(status="ready", is_active=True, artifact_dir=str(artifact_dir))


def test_a_question_no_intent_covers_is_answered_from_the_help_center_with_its_citation(
    page: Page, start_server, demo_index_dir
):
    from chatbot.conversations.models import Message

    version = serve_index(demo_index_dir)
    live = start_server(KNOWLEDGE_AUTO_REBUILD="0")
    page.context.route(
        "https://northwind.example/**",
        lambda route: route.fulfill(content_type="text/html", body="<title>Product care</title><h1>Product care</h1>"),
    )
    widget = Widget(page)
    page.goto(live.url + "/")
    widget.open()
    widget.send(COVERED)

    card = page.locator("chat-widget .log .msg.bot .kb-card")
    expect(card).to_have_count(1)
    expect(card.locator(".kb-title")).to_have_text("Product manuals and care instructions")
    expect(widget.bubbles("bot").first).to_contain_text("board")
    link = card.locator("a.kb-link")
    expect(link).to_have_attribute("href", ARTICLE_URL)
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    reply = eventually(lambda: Message.objects.filter(sender="bot").first(), message="the bot's answer")
    assert (reply.answer_source, reply.knowledge_index_id) == ("article", version.pk)
    assert reply.citation["url"] == ARTICLE_URL

    # "Was this helpful?" -> yes: the server records it on the answer.
    helpful = page.locator("chat-widget .kb-helpful")
    expect(helpful).to_contain_text("Was this helpful?")
    screenshot(page, "widget-knowledge")
    helpful.get_by_role("button", name="Yes").click()
    eventually(lambda: Message.objects.filter(pk=reply.pk, helpful=True).exists(), message="the helpful vote")
    from chatbot.knowledge.services import learning_pairs

    assert learning_pairs() == [(COVERED, "product-care")]

    # The visitor opens the article.
    with page.expect_popup() as popup:
        link.click()
    article = popup.value
    article.wait_for_load_state()
    assert article.url == ARTICLE_URL and article.title() == "Product care"

    # Something the help center does not cover: no card, the fallback offers a person.
    widget.send(NOT_COVERED)
    expect(widget.bubbles("bot")).to_have_count(2)
    expect(card).to_have_count(1)
    expect(page.locator("chat-widget .chips .chip").filter(has_text="Talk to a human")).to_be_visible()
    fallback = eventually(lambda: Message.objects.filter(sender="bot", seq__gt=reply.seq).first(), message="fallback")
    assert fallback.answer_source == "fallback" and fallback.knowledge_index_id == version.pk
    assert fallback.knowledge_considered  # what the help center weighed, for review


def test_a_hostile_article_title_and_url_render_as_text_without_a_link(page: Page, start_server, hostile_index_dir):
    serve_index(hostile_index_dir)
    live = start_server(KNOWLEDGE_AUTO_REBUILD="0")
    widget = Widget(page)
    page.goto(live.url + "/")
    widget.open()
    widget.send(NOT_COVERED)

    card = page.locator("chat-widget .log .msg.bot .kb-card")
    expect(card).to_have_count(1)
    expect(card.locator(".kb-title")).to_have_text(HOSTILE_TITLE)  # the markup shown as text
    assert card.locator("img, b, a").count() == 0  # no element from the title, no javascript: link
    expect(page.locator("chat-widget .kb-helpful")).to_be_visible()
    page.reload()  # drawn again from the widget's cache: still text
    widget.open()
    expect(card.locator(".kb-title")).to_have_text(HOSTILE_TITLE)
    assert card.locator("img, b, a").count() == 0
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
