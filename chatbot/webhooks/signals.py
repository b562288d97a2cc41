"""Where events come from. Conversations, messages and model versions: Django
signals, so those apps' code stays as it is (a model version's transitions are
read from the lifecycle's audit trail, VersionTransition). A CSAT score changes
through queryset.update(), which sends no post_save: the conversations app sends
its own `rating_recorded` signal, received by csat_received."""

from django.db.models.signals import post_init, post_save
from django.dispatch import receiver

from chatbot.conversations.models import Conversation, Message
from chatbot.modelops.models import VersionTransition
from chatbot.webhooks.models import EventType
from chatbot.webhooks.services import emit

STATUS_EVENTS = {
    Conversation.Status.WAITING_FOR_AGENT: EventType.CONVERSATION_HANDED_OFF,
    Conversation.Status.WITH_AGENT: EventType.CONVERSATION_ASSIGNED,
    Conversation.Status.CLOSED: EventType.CONVERSATION_CLOSED,
}
MESSAGE_SENDERS = (Message.Sender.VISITOR, Message.Sender.BOT, Message.Sender.AGENT)


def conversation_payload(conversation: Conversation) -> dict:
    return {
        "conversation": {
            "id": str(conversation.pk),
            "status": conversation.status,
            "visitor_id": conversation.visitor_id,
            "assigned_agent_id": conversation.assigned_agent_id,
            "handoff_reason": conversation.handoff_reason,
            "csat": conversation.csat,
            "created_at": conversation.created_at.isoformat() if conversation.created_at else None,
        }
    }


@receiver(post_init, sender=Conversation)
def _remember_status(sender, instance: Conversation, **kwargs) -> None:
    instance._webhook_status = instance.status


@receiver(post_save, sender=Conversation)
def _conversation_saved(sender, instance: Conversation, created: bool, update_fields=None, **kwargs) -> None:
    if created:
        emit(EventType.CONVERSATION_CREATED, conversation_payload(instance))
    else:
        # Every change of hands saves "status" by name (conversations.services.change_status),
        # even when a conditional UPDATE already wrote the new status (agents.services.take_over);
        # a plain save() counts when the status differs from what was loaded.
        changed = instance.status != getattr(instance, "_webhook_status", instance.status)
        if (update_fields is not None and "status" in update_fields) or (update_fields is None and changed):
            event_type = STATUS_EVENTS.get(instance.status)
            if event_type is not None:
                emit(event_type, conversation_payload(instance))
    instance._webhook_status = instance.status


@receiver(post_save, sender=Message)
def _message_saved(sender, instance: Message, created: bool, **kwargs) -> None:
    if not created or instance.sender not in MESSAGE_SENDERS:
        return
    emit(
        EventType.MESSAGE_CREATED,
        {
            "conversation_id": str(instance.conversation_id),
            "message": {
                "id": instance.pk,
                "seq": instance.seq,
                "sender": instance.sender,
                "text": instance.text,
                "internal": instance.internal,
                "author_id": instance.author_id,
                "intent": instance.intent,
                "confidence": instance.confidence,
                "created_at": instance.created_at.isoformat(),
            },
        },
    )


# --- Called by other apps (one line each) ----------------------------------------


def csat_received(sender=None, *, conversation_id, score: int, **kwargs) -> None:
    """Receiver of conversations.services.rating_recorded (connected in WebhooksConfig.ready)."""
    emit(EventType.CSAT_RECEIVED, {"conversation_id": str(conversation_id), "score": score})


# Intent-model transitions that are events: activation (a rollback activates an older
# version) and a failed run (in the worker, or recovered after its worker died).
TRANSITION_EVENTS = {
    "activated": "model_version.activated",
    "rolled back": "model_version.activated",
    "failed": "training.failed",
    "recovered": "training.failed",
}


@receiver(post_save, sender=VersionTransition)
def _version_transition(sender, instance: VersionTransition, created: bool, **kwargs) -> None:
    from chatbot.nlu.models import ModelVersion

    event_type = TRANSITION_EVENTS.get(instance.action)
    if created and event_type and instance.content_type.model_class() is ModelVersion:
        model_version_event(event_type, instance.object_id)


def model_version_event(event_type: str, version_id: int) -> None:
    """ "model_version.activated" after an activation, "training.failed" when a run fails."""
    from chatbot.nlu.models import ModelVersion

    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        return
    emit(
        event_type,
        {
            "model_version": {
                "id": version.pk,
                "status": version.status,
                "mode": version.mode,
                "is_active": version.is_active,
                "metrics": version.metrics,
                "error": version.error,
                "activation_note": version.activation_note,
            }
        },
    )
