from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "chatbot.analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Outcomes follow handoffs, ratings and closes; metrics count messages.
        from chatbot.analytics import signals  # noqa: F401
