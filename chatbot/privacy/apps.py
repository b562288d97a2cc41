from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "chatbot.privacy"
    verbose_name = "Privacy"

    def ready(self) -> None:
        from chatbot.privacy import signals  # noqa: F401  (card numbers masked before a message is stored)
