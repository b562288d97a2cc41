"""Small helpers for the dashboard's templates."""

from django import template

from chatbot.conversations.services import HANDOFF_REASONS

register = template.Library()

REASON_LABELS = {
    "requested": "Asked for a person",
    "fallback": "Bot stuck",
    "thumbs_down": "Disliked answer",
    "agent": "Taken by agent",
}


@register.inclusion_tag("agents/_queue_item.html")
def queue_item(conversation, kind: str) -> dict:
    return {"c": conversation, "kind": kind}


@register.filter
def reason_label(reason: str) -> str:
    return REASON_LABELS.get(reason) or HANDOFF_REASONS.get(reason, reason)


STATUS_LABELS = {
    "bot": "With the bot",
    "waiting_for_agent": "Waiting",
    "with_agent": "With an agent",
    "closed": "Closed",
}


@register.filter
def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


@register.filter
def percent(value) -> str:
    if value is None:
        return ""
    return f"{round(float(value) * 100)}%"
