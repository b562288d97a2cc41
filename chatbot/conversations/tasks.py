"""Celery tasks of the chat: thin, take ids, safe to run twice."""

import logging

from celery import shared_task
from django.db.models import Exists, OuterRef

from chatbot.celery import Queue
from chatbot.conversations import services
from chatbot.conversations.models import Message
from chatbot.knowledge import serving as knowledge_serving
from chatbot.nlu import services as nlu_services
from chatbot.nlu import serving
from chatbot.ops import heartbeat
from chatbot.ops.resilience import TRANSIENT_ERRORS

log = logging.getLogger(__name__)


# A worker of the inference queue loads the models before its first heartbeat, so
# the first visitor does not wait for them and /healthz counts it only once it answers.
heartbeat.warm_up_before_beating(Queue.INFERENCE.value, serving.warm_up)
heartbeat.warm_up_before_beating(Queue.INFERENCE.value, knowledge_serving.warm_up)


# A database or broker restart fails the task for a moment: retry with backoff
# (1, 2, 4 ... 30 s, jittered); the sweeper (chatbot/conversations/recovery.py) catches the rest.
@shared_task(
    queue=Queue.INFERENCE,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=10,
)
def reply_to_visitor_message(message_id: int) -> None:
    row = (
        Message.objects.filter(pk=message_id, sender=Message.Sender.VISITOR)
        .values_list("text", Exists(Message.objects.filter(reply_to_id=OuterRef("pk"))))
        .first()
    )
    if row is None or row[1]:  # no such visitor message, or answered already
        return
    text = row[0]
    try:
        result, version_id = serving.predict(text)
    except serving.NoActiveModel:
        log.warning("no active intent model; answering message %s with the fallback", message_id)
        prediction = services.BotPrediction(intent="", confidence=0.0, out_of_scope=True, model_version_id=None)
    else:
        prediction = services.BotPrediction(
            intent=result.intent,
            confidence=float(result.confidence),
            out_of_scope=bool(result.out_of_scope),
            model_version_id=version_id,
        )
    services.answer_visitor_message(message_id, prediction, ask_knowledge=knowledge_serving.ask)
    nlu_services.note_low_confidence(message_id, confidence=prediction.confidence, out_of_scope=prediction.out_of_scope)
    # Reply suggestions for the agents follow in a task of their own (the agents app
    # listens), so a slow or broken reply model never holds up or fails the intent path.
    services.visitor_message_answered.send(sender=reply_to_visitor_message, message_id=message_id)


@shared_task(queue=Queue.DEFAULT, ignore_result=True)
def recover_unanswered_messages() -> int:
    """Beat, every few seconds: enqueue again what was acknowledged and never answered."""
    from chatbot.conversations import recovery

    return len(recovery.requeue_unanswered())


@shared_task(queue=Queue.DEFAULT, ignore_result=True)
def delete_unused_sessions() -> int:
    """Hourly (celery beat): sessions that never had a message, after UNUSED_SESSION_TTL_HOURS."""
    return services.delete_unused_sessions()
