"""Retention, export and erasure of a visitor's personal data (docs/privacy.md).

Erasure removes the visitor, their conversations and messages, the review items
(feedback) on them, and the training examples made from their words; reply-model
training pairs are built from stored conversations, so they go with them. Models
already trained on that text are recorded on the Erasure row for retraining.
"""

import secrets
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min, QuerySet
from django.utils import timezone

from chatbot.agents.names import display_name
from chatbot.audit.services import record
from chatbot.conversations.models import Conversation, Message, Visitor, hash_token
from chatbot.nlu.models import Feedback, ModelVersion, TrainingExample
from chatbot.nlu.pii import mask_pii
from chatbot.privacy.models import Erasure
from chatbot.replies.models import ReplyModelVersion

REMOVED = "[removed]"


class VisitorNotFound(LookupError):
    pass


def find_visitors(*, email: str | None = None, visitor_id: int | None = None) -> QuerySet:
    """Every visitor with this email address (any case), or the one with this id."""
    if (email is None) == (visitor_id is None):
        raise ValueError("Give an email address or a visitor id, not both.")
    visitors = (
        Visitor.objects.filter(email__iexact=email.strip())
        if email is not None
        else Visitor.objects.filter(pk=visitor_id)
    )
    if not visitors.exists():
        raise VisitorNotFound(f"No visitor with {'that email address' if email is not None else f'id {visitor_id}'}.")
    return visitors


# --- Export -------------------------------------------------------------------


def export_visitors(visitors: QuerySet) -> dict:
    """Everything stored about these visitors, as JSON-able data (right of access)."""
    out = []
    for visitor in visitors.order_by("pk"):
        conversations = []
        for conversation in visitor.conversations.order_by("created_at"):
            messages = conversation.messages.select_related("author").order_by("seq")
            conversations.append(
                {
                    "id": str(conversation.pk),
                    "status": conversation.status,
                    "created_at": conversation.created_at.isoformat(),
                    "closed_at": conversation.closed_at.isoformat() if conversation.closed_at else None,
                    "rating": conversation.csat,
                    "messages": [
                        {
                            "seq": m.seq,
                            "sender": m.sender,
                            "agent": display_name(m.author) if m.author else None,
                            "internal_note": m.internal,
                            "text": m.text,
                            "created_at": m.created_at.isoformat(),
                        }
                        for m in messages
                    ],
                }
            )
        out.append(
            {
                "visitor_id": visitor.pk,
                "name": visitor.name,
                "email": visitor.email,
                "identity_verified": visitor.identity_verified,
                "external_id": visitor.external_id,
                "page_url": visitor.page_url,
                "user_agent": visitor.user_agent,
                "created_at": visitor.created_at.isoformat(),
                "last_seen_at": visitor.last_seen_at.isoformat(),
                "conversations": conversations,
            }
        )
    return {"exported_at": timezone.now().isoformat(), "visitors": out}


# --- Erasure ------------------------------------------------------------------


@dataclass
class ErasureReport:
    visitors: int = 0
    conversations: int = 0
    messages: int = 0
    review_items: int = 0
    training_examples: int = 0
    intent_versions: list[int] = field(default_factory=list)
    reply_versions: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        text = (
            f"erased {self.visitors} visitor(s), {self.conversations} conversation(s), {self.messages} message(s), "
            f"{self.review_items} review item(s), {self.training_examples} training example(s)"
        )
        if self.intent_versions or self.reply_versions:
            text += (
                f"; to retrain: intent model versions {self.intent_versions or '-'}, "
                f"reply model versions {self.reply_versions or '-'}"
            )
        return text


def _derived_examples(messages: QuerySet) -> QuerySet:
    """Training examples made from these messages: through their review items, and
    (in case the review item is gone) feedback examples whose text is a masked one of them."""
    linked = Feedback.objects.filter(message__in=messages).exclude(training_example=None)
    texts = set()
    for text in messages.filter(sender=Message.Sender.VISITOR).values_list("text", flat=True).iterator():
        texts.update({" ".join(text.split()), " ".join(mask_pii(text).split())})
    return TrainingExample.objects.filter(pk__in=linked.values("training_example_id")) | TrainingExample.objects.filter(
        source=TrainingExample.Source.FEEDBACK, text__in=texts
    )


def erase_visitors(visitors: QuerySet, *, actor=None, found_by: str = "visitor_id") -> ErasureReport:
    """Remove the visitors and everything made from their words, in one transaction."""
    report = ErasureReport()
    with transaction.atomic():
        visitor_ids = list(visitors.values_list("pk", flat=True))
        conversations = Conversation.objects.filter(visitor_id__in=visitor_ids)
        messages = Message.objects.filter(conversation__in=conversations)
        examples = _derived_examples(messages)
        first_example = examples.aggregate(at=Min("created_at"))["at"]
        # Reply models learn from conversations an agent answered in.
        answered = messages.filter(conversation__messages__sender=Message.Sender.AGENT)
        first_answered = answered.aggregate(at=Min("created_at"))["at"]
        if first_example is not None:
            report.intent_versions = list(
                ModelVersion.objects.filter(status=ModelVersion.Status.READY, created_at__gte=first_example)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
        if first_answered is not None:
            report.reply_versions = list(
                ReplyModelVersion.objects.filter(status=ReplyModelVersion.Status.READY, created_at__gte=first_answered)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
        report.review_items = Feedback.objects.filter(message__in=messages).count()
        report.messages = messages.count()
        report.conversations = conversations.count()
        report.training_examples = examples.count()
        TrainingExample.objects.filter(pk__in=list(examples.values_list("pk", flat=True))).delete()
        conversations.delete()  # messages, review items and suggestion events go with them
        report.visitors, _ = Visitor.objects.filter(pk__in=visitor_ids).delete()
        report.visitors = len(visitor_ids)
        counts = {k: v for k, v in asdict(report).items() if not isinstance(v, list)}
        erasure = Erasure.objects.create(
            actor=actor if getattr(actor, "is_authenticated", False) else None,
            found_by=found_by,
            counts=counts,
            intent_versions=report.intent_versions,
            reply_versions=report.reply_versions,
        )
        record(actor, "privacy.erase", erasure, found_by=found_by, **counts)
    return report


def erasures_awaiting_retraining() -> QuerySet:
    return Erasure.objects.filter(retrained_at=None).exclude(intent_versions=[], reply_versions=[])


# --- Retention ------------------------------------------------------------------


def apply_retention(now=None) -> dict:
    """Delete or anonymise (RETENTION_ACTION) conversations with no activity for
    RETENTION_DAYS, and visitors left with none. Safe to run twice."""
    if not settings.RETENTION_DAYS:
        return {}
    cutoff = (now or timezone.now()) - timedelta(days=settings.RETENTION_DAYS)
    old = Conversation.objects.filter(updated_at__lt=cutoff)
    with transaction.atomic():
        if settings.RETENTION_ACTION == "delete":
            conversations = old.count()
            old.delete()
            visitors, _ = Visitor.objects.filter(last_seen_at__lt=cutoff, conversations=None).delete()
            result = {"deleted_conversations": conversations, "deleted_visitors": visitors}
        else:
            messages = Message.objects.filter(conversation__in=old).exclude(text=REMOVED).update(text=REMOVED)
            stale = Visitor.objects.filter(last_seen_at__lt=cutoff).exclude(conversations__updated_at__gte=cutoff)
            visitors = 0
            for visitor_id in stale.exclude(token_hash__startswith="anonymised:").values_list("pk", flat=True):
                # A fresh random hash: the old token can never match again.
                Visitor.objects.filter(pk=visitor_id).update(
                    name="",
                    email="",
                    page_url="",
                    user_agent="",
                    external_id="",
                    identity_verified=False,
                    token_hash="anonymised:" + hash_token(secrets.token_urlsafe(32))[:52],
                )
                visitors += 1
            result = {"anonymised_messages": messages, "anonymised_visitors": visitors}
    if any(result.values()):
        record(None, "privacy.retention", f"older than {settings.RETENTION_DAYS} days", **result)
    return result
