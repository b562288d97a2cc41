"""Small helpers for the dashboard's templates."""

from django import template

from chatbot.conversations.models import HandoffReason

register = template.Library()


@register.inclusion_tag("agents/_queue_item.html")
def queue_item(conversation, kind: str) -> dict:
    return {"c": conversation, "kind": kind}


@register.inclusion_tag("agents/_queue_pager.html")
def queue_pager(queue, section: str) -> dict:
    """ "N more" after a queue section's page, and the way back to its first page."""
    page = queue.pages[section]
    return {"section": section, "page": page, "more": queue.more.get(section, 0)}


@register.filter
def reason_tag(reason: str) -> str:
    """The short form of a handoff reason, for the queue's cards."""
    return HandoffReason(reason).tag if reason in HandoffReason.values else reason


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


@register.filter
def get_item(mapping: dict, key: str):
    return mapping.get(key, "")
