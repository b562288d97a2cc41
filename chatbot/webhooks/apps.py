from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "chatbot.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from chatbot.conversations import services
        from chatbot.webhooks import signals  # connects the @receiver functions

        services.rating_recorded.connect(signals.csat_received, dispatch_uid="webhooks.csat_received")

        from chatbot.webhooks.models import Subscription
        from chatbot.webhooks.services import subscriptions

        subscriptions.watch(Subscription)
