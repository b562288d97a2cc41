"""The demo store's starter canned responses, added by `bootstrap_demo` only: they name the
demo's order format, so they have no place in a production database."""

from chatbot.agents.models import CannedResponse

STARTERS = [
    ("hi", "Greeting", "Hi, thanks for waiting! I'm here to help. What can I do for you?"),
    (
        "order",
        "Ask for the order number",
        "Could you give me your order number? It looks like NW-123456 and is in your confirmation email.",
    ),
    (
        "email",
        "Ask for an email address",
        "Could you leave your email address so we can follow up if we get disconnected?",
    ),
    ("bye", "Closing", "Is there anything else I can help with? Have a great day!"),
]


def add_starter_canned_responses() -> int:
    """Add the starters that are missing (an edited or deleted one is left as the staff left it
    only while its shortcut exists); returns how many were added."""
    added = 0
    for shortcut, title, text in STARTERS:
        _, created = CannedResponse.objects.get_or_create(shortcut=shortcut, defaults={"title": title, "text": text})
        added += created
    return added
