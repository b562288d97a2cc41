"""Hooks into the other apps' saves, so their code needs no call into analytics:
a handoff reopens a counted outcome, a close finalises one, a thumbs-down
recomputes one, and messages feed the Prometheus counters."""

import logging

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from chatbot.analytics import metrics, outcomes
from chatbot.analytics.models import UnansweredMessage
from chatbot.conversations.models import Conversation, Message
from chatbot.nlu.models import Feedback

log = logging.getLogger(__name__)


def _finalise_after_commit(conversation_id) -> None:
    def run() -> None:
        try:
            outcomes.finalise([conversation_id])
        except Exception:
            # The beat task finalises it on its next run.
            log.exception("could not finalise the outcome of conversation %s", conversation_id)

    transaction.on_commit(run)


@receiver(post_save, sender=Conversation, dispatch_uid="analytics.conversation_saved")
def conversation_saved(
    sender, instance: Conversation, created: bool, raw: bool = False, update_fields=None, **kwargs
) -> None:
    # Only a change of hands matters (every stored message saves the conversation too).
    if raw or (update_fields is not None and "status" not in update_fields):
        return
    if instance.status in outcomes.HANDED_OVER_STATUSES:
        outcomes.record_handoff(instance)
    elif instance.status == Conversation.Status.CLOSED:
        _finalise_after_commit(instance.pk)


@receiver(post_save, sender=Message, dispatch_uid="analytics.message_saved")
def message_saved(sender, instance: Message, created: bool, raw: bool = False, **kwargs) -> None:
    if raw or not created:
        return
    if instance.sender == Message.Sender.VISITOR:
        outcomes.reopen(instance.conversation_id)
        transaction.on_commit(metrics.count_visitor_message)
    elif instance.sender == Message.Sender.BOT and instance.reply_to_id is not None:
        transaction.on_commit(lambda: metrics.observe_bot_answer(instance))


UNANSWERED_SOURCES = (Feedback.Source.FALLBACK, Feedback.Source.LOW_CONFIDENCE)


@receiver(post_save, sender=Feedback, dispatch_uid="analytics.feedback_saved")
def feedback_saved(sender, instance: Feedback, created: bool, raw: bool = False, **kwargs) -> None:
    if raw or not created:
        return
    if instance.source in UNANSWERED_SOURCES:
        text = Message.objects.filter(pk=instance.message_id).values_list("text", flat=True).first()
        UnansweredMessage.objects.get_or_create(
            feedback_id=instance.pk,
            defaults={"source": instance.source, "text": text or "", "created_at": instance.created_at},
        )
        return
    if instance.source != Feedback.Source.THUMBS_DOWN:
        return
    conversation_id = Message.objects.filter(pk=instance.message_id).values_list("conversation_id", flat=True).first()
    if (
        conversation_id is not None
        and outcomes.ConversationOutcome.objects.filter(pk=conversation_id, final=True).exists()
    ):
        _finalise_after_commit(conversation_id)
