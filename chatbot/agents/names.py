"""What visitors see of an agent: the display name (the user's first and last name),
never the login name. Built in chatbot.conversations.events, where every frame is."""

from chatbot.conversations.events import ANONYMOUS_AGENT, display_name

__all__ = ["ANONYMOUS_AGENT", "display_name", "has_display_name"]


def has_display_name(user) -> bool:
    return bool(user.get_full_name())
