"""Celery tasks of the chat: thin, take ids, safe to run twice."""

import logging

from celery import shared_task

from chatbot.celery import Queue
from chatbot.conversations import services
from chatbot.conversations.models import Message
from chatbot.nlu import serving

log = logging.getLogger(__name__)


@shared_task(queue=Queue.INFERENCE)
def reply_to_visitor_message(message_id: int) -> None:
    text = Message.objects.filter(pk=message_id, sender=Message.Sender.VISITOR).values_list("text", flat=True).first()
    if text is None or Message.objects.filter(reply_to_id=message_id).exists():
        return
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
    services.answer_visitor_message(message_id, prediction)
