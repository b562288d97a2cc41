"""The bot's answer to a visitor message: gather the facts, ask `decision.decide`,
store and push what it decided."""

import dataclasses
import math
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.db.models.functions import Coalesce
from django.dispatch import Signal
from django.utils import timezone

from chatbot import realtime
from chatbot.conversations import events
from chatbot.conversations.decision import Action, BotPrediction, ConversationState, asks_knowledge, decide
from chatbot.conversations.models import AnswerSource, Conversation, HandoffReason, Message, Visitor
from chatbot.conversations.services.handoff import HANDOFF_TEXT, NO_AGENT_TEXT, any_agent_online, hand_off_locked
from chatbot.conversations.services.messages import append_message
from chatbot.conversations.services.offline import find_email, leave_email_locked, waits_offline
from chatbot.knowledge.services import answer_from_linked_articles
from chatbot.nlu.answers import intent_with_answers
from chatbot.nlu.models import Feedback, Intent, Response

FALLBACK_TEXT = "Sorry, I didn't quite get that. Could you rephrase it, or would you like to talk to a person?"
WAITING_TEXT = "You're still in the queue. Someone from our team will reply here."
OFFLINE_THANKS_TEXT = "You're still in the queue. We have your email address and will get back to you."
TALK_TO_HUMAN = "Talk to a human"
ANSWERS = (Action.ANSWER, Action.ANSWER_FROM_ARTICLE, Action.ANSWER_WITH_LINKED_ARTICLES)

# Sent (with `message_id`) once the inference task has dealt with a visitor message,
# whoever is in charge; the agents app asks for reply suggestions on it.
visitor_message_answered = Signal()


def answer_visitor_message(message_id: int, prediction: BotPrediction, ask_knowledge=None) -> Message | None:
    """Store the prediction on the visitor's message and, when the bot is in
    charge, its reply. Safe to run twice: the reply is unique per message.
    ``ask_knowledge(text)`` (chatbot.knowledge.serving.ask in the worker) is called
    when no confident intent answers; None: no knowledge base."""
    with transaction.atomic():
        # The message and its conversation, that row locked, in one query.
        message = (
            Message.objects.select_related("conversation").select_for_update(of=("conversation",)).get(pk=message_id)
        )
        conversation = message.conversation
        if Message.objects.filter(reply_to_id=message_id).exists():
            return None
        Message.objects.filter(pk=message_id).update(
            intent=prediction.intent,
            confidence=prediction.confidence,
            out_of_scope=prediction.out_of_scope,
            model_version_id=prediction.model_version_id,
        )
        if waits_offline(conversation) and (email := find_email(message.text)):
            # "sure, it's ada@example.com": the address the bot asked for, not a question.
            return leave_email_locked(conversation, email, reply_to_id=message_id)
        intent = None
        if conversation.status not in (Conversation.Status.WITH_AGENT, Conversation.Status.CLOSED):
            intent = intent_with_answers(prediction.intent)
        state = ConversationState(
            status=conversation.status,
            fallback_streak=conversation.fallback_streak,
            previous_answer_disliked=conversation.status == Conversation.Status.BOT
            and _previous_answer_disliked(message),
            intent_known=intent is not None,
            intent_hands_off=intent is not None and intent.handoff,
            queue_reminder_due=conversation.status == Conversation.Status.WAITING_FOR_AGENT
            and _queue_reminder_due(message),
            intent_has_response=intent is not None and bool(intent.responses.all()),
            intent_links_articles=intent is not None and intent.links_articles,
        )
        knowledge = None
        if ask_knowledge is not None and asks_knowledge(
            state, prediction, confidence_threshold=settings.INTENT_CONFIDENCE_THRESHOLD
        ):
            knowledge = ask_knowledge(message.text)
            state = dataclasses.replace(state, knowledge_confident=knowledge is not None and knowledge.answered)
        decision = decide(
            state,
            prediction,
            confidence_threshold=settings.INTENT_CONFIDENCE_THRESHOLD,
            handoff_after_fallbacks=settings.HANDOFF_AFTER_FALLBACKS,
        )
        prediction_event = events.prediction_event(conversation, message_id, prediction)
        if decision.action is Action.SILENT:
            # A person is in charge (or awaited): the bot stays silent, agents see the prediction.
            realtime.push(realtime.AGENTS_GROUP, prediction_event)
            return None

        if decision.unanswered:
            Feedback.objects.get_or_create(
                message_id=message_id,
                source=Feedback.Source.FALLBACK,
                defaults={"predicted_intent": prediction.intent, "confidence": prediction.confidence},
            )
        linked = None
        if decision.action is Action.ANSWER_WITH_LINKED_ARTICLES:
            linked = answer_from_linked_articles(
                message.text, intent.articles.filter(published=True).order_by("title"), intent=intent.name
            )
            if linked is None:  # the articles have no text: the intent's responses, as before
                decision = dataclasses.replace(decision, action=Action.ANSWER)
        if decision.action is Action.ANSWER_FROM_ARTICLE:
            text, quick_replies = knowledge.text, []
        elif linked is not None:
            text, quick_replies = linked.text, []
        else:
            text, quick_replies = _reply_text(decision.action, conversation, intent, message.seq)
        conversation.fallback_streak = decision.fallback_streak  # saved with the reply's seq
        offline = decision.moves_to_queue and not any_agent_online()
        if offline:
            text = NO_AGENT_TEXT
        reply = append_message(
            conversation,
            also_save=("fallback_streak",),
            # The queue reminder is a system line: no thumbs, no chips.
            sender=Message.Sender.SYSTEM if decision.action is Action.WAIT else Message.Sender.BOT,
            answer=decision.action in ANSWERS and text != FALLBACK_TEXT,
            reply_to_id=message_id,
            intent=prediction.intent,
            confidence=prediction.confidence,
            out_of_scope=prediction.out_of_scope,
            model_version_id=prediction.model_version_id,
            text=text,
            quick_replies=quick_replies,
            **_answer_source(decision, prediction, knowledge, linked),
        )
        realtime.push(realtime.conversation_group(conversation.pk), events.message_event(reply))
        if decision.moves_to_queue:
            hand_off_locked(conversation, decision.reason, offline=offline)
        else:
            realtime.push(realtime.AGENTS_GROUP, events.queue_event(conversation))
        realtime.push(realtime.AGENTS_GROUP, prediction_event)
    return reply


def _answer_source(decision, prediction: BotPrediction, knowledge, linked=None) -> dict:
    """Where the answer came from, its score and the index version (issue 16). An
    intent answered with its linked articles is an article answer (card, "Was this
    helpful?") scored by the intent's confidence, with no index version."""
    action = decision.action
    if linked is not None:
        fields = {
            "answer_source": AnswerSource.ARTICLE,
            "answer_score": prediction.confidence,
            "citation": linked.citation,
        }
    elif action is Action.ANSWER or decision.reason == HandoffReason.REQUESTED:
        fields = {"answer_source": AnswerSource.INTENT, "answer_score": prediction.confidence}
    elif action is Action.ANSWER_FROM_ARTICLE:
        fields = {"answer_source": AnswerSource.ARTICLE, "citation": knowledge.citation}
    else:
        fields = {"answer_source": AnswerSource.FALLBACK, "answer_score": None}
    if knowledge is not None:
        fields.update(
            answer_score=knowledge.score if math.isfinite(knowledge.score) else None,
            knowledge_index_id=knowledge.index_version_id,
            knowledge_considered=knowledge.considered,
        )
    return fields


def _reply_text(action: Action, conversation: Conversation, intent: Intent | None, seq: int) -> tuple[str, list]:
    if action is Action.HAND_OFF:
        return HANDOFF_TEXT, []
    if action is Action.WAIT:
        return _waiting_text(conversation), []
    if action is Action.FALLBACK:
        return FALLBACK_TEXT, [TALK_TO_HUMAN]
    response = _pick_response(intent, seq)
    return (response.text, response.quick_replies) if response else (FALLBACK_TEXT, [])


def _pick_response(intent: Intent, seq: int) -> Response | None:
    responses = list(intent.responses.all())
    return responses[seq % len(responses)] if responses else None


def _previous_answer_disliked(message: Message) -> bool:
    """Did the visitor give a thumbs-down to the last thing said to them before `message`?
    (A system message in between, such as a hand-back to the bot, starts afresh.)"""
    # Thumbs are stored on the visitor message the answer replied to (see record_thumbs).
    thumbs_down = Feedback.objects.filter(
        message_id=Coalesce(OuterRef("reply_to_id"), OuterRef("pk")), source=Feedback.Source.THUMBS_DOWN
    )
    previous = (
        Message.objects.filter(conversation_id=message.conversation_id, seq__lt=message.seq, internal=False)
        .exclude(sender=Message.Sender.VISITOR)
        .order_by("-seq")
        .values_list("sender", Exists(thumbs_down))
        .first()
    )
    return previous is not None and previous[0] == Message.Sender.BOT and previous[1]


def _queue_reminder_due(message: Message) -> bool:
    """Was the last line said to the waiting visitor at least QUEUE_REMINDER_INTERVAL_S ago?"""
    last = (
        Message.objects.filter(conversation_id=message.conversation_id, seq__lt=message.seq, internal=False)
        .exclude(sender=Message.Sender.VISITOR)
        .order_by("-seq")
        .values_list("created_at", flat=True)
        .first()
    )
    return last is None or timezone.now() - last >= timedelta(seconds=settings.QUEUE_REMINDER_INTERVAL_S)


def _waiting_text(conversation: Conversation) -> str:
    if not conversation.offline_message:
        return WAITING_TEXT
    has_email = Visitor.objects.filter(pk=conversation.visitor_id).exclude(email="").exists()
    return OFFLINE_THANKS_TEXT if has_email else NO_AGENT_TEXT
