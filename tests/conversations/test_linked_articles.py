"""An intent may link to help-center articles instead of a canned text (issue 16):
a confident prediction of it is answered with the linked articles' citation cards
(the same card and "Was this helpful?" as knowledge answers) and the sentences that
fit the question; the source is recorded as an article answer."""

import pytest

from chatbot.conversations import services
from chatbot.conversations.decision import Action, BotPrediction, ConversationState, asks_knowledge, decide
from chatbot.conversations.events import message_frame
from chatbot.knowledge.models import Article
from chatbot.nlu.models import Intent

THRESHOLD = 0.6


def said(confidence=0.9) -> BotPrediction:
    return BotPrediction(intent="shipping_times", confidence=confidence, out_of_scope=False, model_version_id=None)


def state(**facts) -> ConversationState:
    return ConversationState(status="bot", fallback_streak=0, intent_known=True, **facts)


def decided(conversation, prediction) -> Action:
    return decide(conversation, prediction, confidence_threshold=THRESHOLD, handoff_after_fallbacks=2).action


def test_linked_articles_answer_a_confident_intent_instead_of_its_text():
    assert decided(state(intent_links_articles=True), said()) is Action.ANSWER_WITH_LINKED_ARTICLES
    assert decided(state(intent_links_articles=True, intent_has_response=False), said()) is (
        Action.ANSWER_WITH_LINKED_ARTICLES
    )
    assert not asks_knowledge(
        state(intent_links_articles=True, intent_has_response=False), said(), confidence_threshold=THRESHOLD
    )
    # Unsure: the links do not answer; the knowledge base is asked as for any unsure intent.
    assert decided(state(intent_links_articles=True), said(0.2)) is Action.FALLBACK
    assert asks_knowledge(state(intent_links_articles=True), said(0.2), confidence_threshold=THRESHOLD)
    # A request for a person still wins.
    assert decided(state(intent_links_articles=True, intent_hands_off=True), said()) is Action.HAND_OFF


@pytest.fixture
def shipping_articles(db, demo_intents):
    times = Article.objects.create(
        slug="shipping-times",
        title="Delivery times",
        url="https://shop.example/help/shipping-times",
        body="Standard delivery takes 3-5 business days.\n\n## Express\n\nExpress delivery arrives in 1-2 business "
        "days when you order before 2 pm.",
    )
    costs = Article.objects.create(
        slug="shipping-costs",
        title="Shipping costs",
        url="https://shop.example/help/shipping-costs",
        body="Shipping is free on orders over EUR 50. Below that, standard shipping costs EUR 4.95.",
    )
    draft = Article.objects.create(slug="draft", title="Draft", body="Not yet published text.", published=False)
    Intent.objects.get(name="shipping_times").articles.set([costs, times, draft])
    return times, costs


@pytest.mark.django_db
def test_the_bot_answers_with_the_linked_articles_cards_and_records_the_source(
    visitor, say, predicted, shipping_articles
):
    times, costs = shipping_articles
    question = say(visitor, "how fast is express delivery")
    reply = services.answer_visitor_message(question.pk, predicted("shipping_times", 0.95))

    assert reply.text.startswith("Express delivery arrives in 1-2 business days")  # the fitting passage, verbatim
    assert (reply.answer_source, reply.answer_score, reply.knowledge_index_id, reply.answer) == (
        "article",
        0.95,
        None,
        True,
    )
    assert reply.citation["article_id"] == "shipping-times" and reply.citation["intent"] == "shipping_times"
    assert [a["article_id"] for a in reply.citation["articles"]] == ["shipping-times", "shipping-costs"]  # no draft
    frame = message_frame(reply)
    assert frame["source"] == "article"
    assert frame["citation"] == {"title": "Delivery times", "url": times.url}
    assert frame["citations"] == [
        {"title": "Delivery times", "url": times.url},
        {"title": "Shipping costs", "url": costs.url},
    ]
    assert not question.feedback.exists()

    # The same "Was this helpful?" as a knowledge answer; a yes is a learning pair.
    from chatbot.knowledge.services import learning_pairs

    services.record_article_feedback(visitor.conversation, reply.pk, True)
    assert learning_pairs() == [("how fast is express delivery", "shipping-times")]


@pytest.mark.django_db
def test_another_question_of_the_intent_is_answered_from_the_other_article(visitor, say, predicted, shipping_articles):
    reply = services.answer_visitor_message(
        say(visitor, "is shipping free over 50").pk, predicted("shipping_times", 0.9)
    )
    assert reply.text.startswith("Shipping is free on orders over EUR 50.")
    assert [a["article_id"] for a in reply.citation["articles"]] == ["shipping-costs", "shipping-times"]


@pytest.mark.django_db
def test_without_published_linked_articles_the_intent_answers_with_its_text(visitor, say, predicted, demo_intents):
    intent = Intent.objects.get(name="shipping_times")
    intent.articles.set([Article.objects.create(slug="draft", title="Draft", body="Soon.", published=False)])
    reply = services.answer_visitor_message(say(visitor, "how long is delivery").pk, predicted("shipping_times", 0.9))
    assert reply.answer_source == "intent" and reply.citation == {}
    assert reply.text in set(intent.responses.values_list("text", flat=True))


@pytest.mark.django_db
def test_an_intent_with_only_linked_articles_and_no_text_still_answers(visitor, say, predicted, shipping_articles):
    Intent.objects.get(name="shipping_times").responses.all().delete()
    reply = services.answer_visitor_message(say(visitor, "delivery time?").pk, predicted("shipping_times", 0.9))
    assert reply.answer_source == "article" and reply.citation["articles"]


@pytest.mark.django_db
def test_the_admin_links_articles_on_the_intent_page(client, admin, shipping_articles):
    from django.urls import reverse

    client.force_login(admin)
    intent = Intent.objects.get(name="shipping_times")
    page = client.get(reverse("admin:nlu_intent_change", args=[intent.pk])).content.decode()
    assert 'name="articles"' in page
