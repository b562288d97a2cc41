from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "chatbot.audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from chatbot.audit import signals  # noqa: F401  (login lockouts)
