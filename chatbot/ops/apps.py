from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "chatbot.ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from chatbot.ops import heartbeat  # noqa: F401  (connects the worker signals)
