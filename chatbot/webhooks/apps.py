from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "chatbot.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from chatbot.webhooks import signals  # noqa: F401 (connects the receivers)
