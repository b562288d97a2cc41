"""The bot's policy with a knowledge base (issue 16): a confident intent with a
response answers as before; otherwise the knowledge base is asked; a confident
passage answers with its citation; otherwise fallback and handoff as before. Every
answer records its source, its score and the index version."""

import pytest

from chatbot.conversations import services
from chatbot.conversations.decision import Action, BotPrediction, ConversationState, asks_knowledge, decide
from chatbot.conversations.events import message_frame
from chatbot.conversations.models import Message
from chatbot.knowledge.models import KnowledgeIndexVersion
from chatbot.knowledge.serving import KnowledgeAnswer

THRESHOLD = 0.6


def said(intent="order_status", confidence=0.9, out_of_scope=False) -> BotPrediction:
    return BotPrediction(intent=intent, confidence=confidence, out_of_scope=out_of_scope, model_version_id=None)


def state(status="bot", **facts) -> ConversationState:
    facts.setdefault("intent_known", True)
    return ConversationState(status=status, fallback_streak=0, **facts)


def decided(conversation, prediction):
    return decide(conversation, prediction, confidence_threshold=THRESHOLD, handoff_after_fallbacks=2).action


# --- The order, as a pure function ---------------------------------------------------


def test_a_confident_intent_with_a_response_wins_over_a_confident_passage():
    assert decided(state(knowledge_confident=True), said()) is Action.ANSWER
    assert not asks_knowledge(state(), said(), confidence_threshold=THRESHOLD)


@pytest.mark.parametrize(
    "conversation, prediction",
    [
        (state(), said(confidence=0.3)),
        (state(), said(out_of_scope=True)),
        (state(intent_known=False), said(intent="gone")),
        (state(intent_has_response=False), said()),
    ],
    ids=["unsure intent", "out of scope", "unknown intent", "intent without a response"],
)
def test_otherwise_the_knowledge_base_is_asked_and_a_confident_passage_answers(conversation, prediction):
    assert asks_knowledge(conversation, prediction, confidence_threshold=THRESHOLD)
    import dataclasses

    confident = dataclasses.replace(conversation, knowledge_confident=True)
    decision = decide(confident, prediction, confidence_threshold=THRESHOLD, handoff_after_fallbacks=2)
    assert (decision.action, decision.fallback_streak, decision.unanswered) == (Action.ANSWER_FROM_ARTICLE, 0, False)
    assert decided(conversation, prediction) is Action.FALLBACK  # no confident passage: as before


def test_handoffs_come_before_the_knowledge_base():
    assert decided(state(intent_hands_off=True, knowledge_confident=True), said()) is Action.HAND_OFF
    assert decided(state(previous_answer_disliked=True, knowledge_confident=True), said(confidence=0.1)) is (
        Action.HAND_OFF
    )
    assert not asks_knowledge(state(intent_hands_off=True), said(), confidence_threshold=THRESHOLD)
    assert not asks_knowledge(state("with_agent"), said(confidence=0.1), confidence_threshold=THRESHOLD)


# --- In the service: what is stored ----------------------------------------------------


class FakeKnowledge:
    """What chatbot.knowledge.serving.ask returns, with a record of the questions asked."""

    def __init__(self, answered: bool, version_id: int) -> None:
        self.answered, self.version_id, self.asked = answered, version_id, []

    def __call__(self, text: str) -> KnowledgeAnswer:
        self.asked.append(text)
        return KnowledgeAnswer(
            answered=self.answered,
            score=0.91 if self.answered else 0.42,
            threshold=0.8,
            text="Standard delivery takes 3-5 business days." if self.answered else "",
            article_id="shipping" if self.answered else "",
            title="Delivery times" if self.answered else "",
            url="https://shop.example/help/shipping" if self.answered else "",
            index_version_id=self.version_id,
            considered=[{"article_id": "shipping", "title": "Delivery times", "url": "https://x.example", "score": 1}],
        )


@pytest.fixture
def index_version(db):
    return KnowledgeIndexVersion.objects.create(status="ready", is_active=True, index_id="abc")


@pytest.mark.django_db
def test_a_confident_intent_answers_without_asking_and_records_intent_as_source(
    visitor, demo_intents, say, predicted, index_version
):
    knowledge = FakeKnowledge(True, index_version.pk)
    reply = services.answer_visitor_message(
        say(visitor, "where is my order").pk, predicted("order_status", 0.95), knowledge
    )
    assert knowledge.asked == []
    assert (reply.answer_source, reply.answer_score, reply.knowledge_index_id) == ("intent", 0.95, None)


@pytest.mark.django_db
def test_an_unsure_intent_is_answered_from_the_article_with_its_citation(
    visitor, demo_intents, say, predicted, index_version
):
    knowledge = FakeKnowledge(True, index_version.pk)
    message = say(visitor, "how long does delivery take to leeds")
    reply = services.answer_visitor_message(message.pk, predicted("order_status", 0.2), knowledge)
    assert knowledge.asked == ["how long does delivery take to leeds"]
    assert reply.text == "Standard delivery takes 3-5 business days."
    assert (reply.answer_source, reply.answer_score, reply.knowledge_index_id) == ("article", 0.91, index_version.pk)
    assert reply.citation == {
        "article_id": "shipping",
        "title": "Delivery times",
        "url": "https://shop.example/help/shipping",
    }
    frame = message_frame(reply)
    assert frame["source"] == "article"
    assert frame["citation"] == {"title": "Delivery times", "url": "https://shop.example/help/shipping"}
    assert not message.feedback.exists()  # answered: nothing for the review inbox
    assert visitor.conversation.__class__.objects.get(pk=visitor.conversation.pk).fallback_streak == 0


@pytest.mark.django_db
def test_when_the_knowledge_base_abstains_the_fallback_keeps_its_score_and_version(
    visitor, demo_intents, say, predicted, index_version
):
    knowledge = FakeKnowledge(False, index_version.pk)
    message = say(visitor, "do you sell gift cards")
    reply = services.answer_visitor_message(message.pk, predicted("", 0.1, out_of_scope=True), knowledge)
    assert reply.text == services.FALLBACK_TEXT
    assert (reply.answer_source, reply.answer_score, reply.knowledge_index_id) == ("fallback", 0.42, index_version.pk)
    assert reply.knowledge_considered[0]["article_id"] == "shipping"  # what the review inbox shows
    assert message.feedback.filter(source="fallback").exists()
    assert "citation" not in message_frame(reply)


@pytest.mark.django_db
def test_answers_can_be_counted_by_source(visitor, demo_intents, say, predicted, index_version):
    from django.db.models import Count

    services.answer_visitor_message(
        say(visitor, "hi").pk, predicted("greeting", 0.9), FakeKnowledge(True, index_version.pk)
    )
    services.answer_visitor_message(
        say(visitor, "delivery?").pk, predicted("", 0.1, True), FakeKnowledge(True, index_version.pk)
    )
    services.answer_visitor_message(
        say(visitor, "gift cards?").pk, predicted("", 0.1, True), FakeKnowledge(False, index_version.pk)
    )
    counts = dict(Message.objects.filter(sender="bot").values_list("answer_source").annotate(n=Count("id")))
    assert counts == {"intent": 1, "article": 1, "fallback": 1}


# --- "Was this helpful?" ------------------------------------------------------------------


@pytest.mark.django_db
def test_helpful_votes_are_recorded_and_become_learning_pairs(visitor, demo_intents, say, predicted, index_version):
    from chatbot.knowledge.services import learning_pairs

    question = say(visitor, "delivery to leeds?")
    reply = services.answer_visitor_message(
        question.pk, predicted("", 0.1, True), FakeKnowledge(True, index_version.pk)
    )
    services.record_article_feedback(visitor.conversation, reply.pk, False)
    reply.refresh_from_db()
    assert reply.helpful is False and learning_pairs() == []
    assert question.feedback.filter(source="thumbs_down").exists()  # in the review inbox
    services.record_article_feedback(visitor.conversation, reply.pk, True)  # changed their mind: the last vote counts
    reply.refresh_from_db()
    assert reply.helpful is True and learning_pairs() == [("delivery to leeds?", "shipping")]
    assert list(question.feedback.values_list("source", flat=True)) == ["thumbs_up"]


@pytest.mark.django_db
def test_an_article_an_agent_sent_becomes_a_learning_pair_for_the_question_before_it(visitor, agent, say):
    from chatbot.agents import services as agent_services
    from chatbot.knowledge.models import Article
    from chatbot.knowledge.services import learning_pairs

    Article.objects.create(
        slug="returns", title="Returns", body="Send it back.", url="https://shop.example/help/returns"
    )
    Article.objects.create(
        slug="returns-abroad",
        title="Returns abroad",
        body="From abroad.",
        url="https://shop.example/help/returns-abroad",
    )
    Article.objects.create(
        slug="draft", title="Draft", body="Not yet.", url="https://shop.example/help/draft", published=False
    )
    say(visitor, "hello")
    say(visitor, "the lamp is broken, can i send it back")
    conversation = visitor.conversation
    agent_services.take_over(conversation.pk, agent)
    agent_services.reply(conversation.pk, agent, "Sorry! Returns — https://shop.example/help/returns")
    agent_services.reply(conversation.pk, agent, "And https://shop.example/help/draft")  # not published: no pair
    assert learning_pairs() == [("the lamp is broken, can i send it back", "returns")]


@pytest.mark.django_db
def test_a_helpful_vote_on_anything_but_an_article_answer_of_this_conversation_is_refused(
    visitor, other_visitor, demo_intents, say, predicted, index_version
):
    intent_reply = services.answer_visitor_message(say(visitor, "hi").pk, predicted("greeting", 0.9))
    article = services.answer_visitor_message(
        say(other_visitor, "delivery?").pk, predicted("", 0.1, True), FakeKnowledge(True, index_version.pk)
    )
    for message_id, helpful, code in [
        (intent_reply.pk, True, "unknown_message"),
        (article.pk, True, "unknown_message"),  # another visitor's answer
        ("x", True, "unknown_message"),
        (intent_reply.pk, "yes", "invalid_feedback"),
    ]:
        with pytest.raises(services.ProtocolError) as refused:
            services.record_article_feedback(visitor.conversation, message_id, helpful)
        assert refused.value.code == code
    assert not Message.objects.filter(helpful__isnull=False).exists()


# --- The review inbox -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_review_inbox_shows_what_the_help_center_considered(
    client, admin, visitor, demo_intents, say, predicted, index_version
):
    knowledge = FakeKnowledge(False, index_version.pk)
    knowledge_considered = [{"article_id": "x", "title": "<script>alert(1)</script>Gift cards", "url": "", "score": 1}]
    question = say(visitor, "do you sell gift cards")
    reply = services.answer_visitor_message(question.pk, predicted("", 0.1, True), knowledge)
    Message.objects.filter(pk=reply.pk).update(knowledge_considered=knowledge_considered)
    unhelpful = services.answer_visitor_message(
        say(visitor, "delivery to leeds?").pk, predicted("", 0.1, True), FakeKnowledge(True, index_version.pk)
    )
    services.record_article_feedback(visitor.conversation, unhelpful.pk, False)

    client.force_login(admin)
    page = client.get("/admin/nlu/feedback/").content.decode()
    assert "abstained (score 0.42); considered “&lt;script&gt;alert(1)&lt;/script&gt;Gift cards”" in page
    assert "answered from “Delivery times” (score 0.91), voted not helpful" in page
