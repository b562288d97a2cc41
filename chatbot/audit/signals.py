"""Login lockouts (django-axes) go into the audit log."""

from axes.signals import user_locked_out
from django.dispatch import receiver

from chatbot.audit.services import record


@receiver(user_locked_out)
def log_lockout(sender, request, username=None, ip_address=None, **kwargs) -> None:
    path = getattr(request, "path", "")
    record(
        None,
        "login.lockout",
        f"{username or '(no user name)'} from {ip_address}",
        username=username,
        ip_address=ip_address,
        path=path,
    )
