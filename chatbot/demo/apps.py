from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo store's first run: above the apps it sets up (intents, reply models,
    canned responses), so none of them has to import another for it."""

    name = "chatbot.demo"
    verbose_name = "Demo"
