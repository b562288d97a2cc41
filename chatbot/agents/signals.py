"""Open dashboard sockets re-check their login as soon as it may have ended: on
logout, and when a user, their groups or a group's permissions change (an agent
removed from the Agents group stops receiving chats at once, not at the next
heartbeat)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from chatbot.agents import services


def on_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        services.recheck_agent_sockets([user.pk])


def on_user_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    # Deactivated, superuser taken away, password changed... (a login only stamps last_login).
    if not created and set(update_fields or ()) != {"last_login"}:
        services.recheck_agent_sockets([instance.pk])


def on_user_groups_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """User.groups changed, from the user's side (instance: a user) or the group's
    (instance: a group, pk_set: its users; a clear names none, so take them before)."""
    if action not in ("post_remove", "pre_clear"):
        return
    if not reverse:
        services.recheck_agent_sockets([instance.pk])
    elif action == "pre_clear":
        services.recheck_agent_sockets(instance.user_set.values_list("pk", flat=True))
    else:
        services.recheck_agent_sockets(pk_set or ())


def on_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """A user's own permissions, or a group's (every member's), changed."""
    if action not in ("post_remove", "pre_clear"):
        return
    if isinstance(instance, Group):
        services.recheck_agent_sockets(instance.user_set.values_list("pk", flat=True))
    elif isinstance(instance, get_user_model()):
        services.recheck_agent_sockets([instance.pk])
