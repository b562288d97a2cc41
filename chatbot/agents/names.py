"""What visitors see of an agent: the display name (the user's first and last name),
never the login name, which is half of a credential."""

# Shown for an account that has no name yet; the login form asks for one first.
ANONYMOUS_AGENT = "Support agent"


def display_name(user) -> str:
    return user.get_full_name() or ANONYMOUS_AGENT


def has_display_name(user) -> bool:
    return bool(user.get_full_name())
