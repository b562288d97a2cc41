from django.apps import AppConfig


class RepliesConfig(AppConfig):
    name = "chatbot.replies"
    verbose_name = "Reply suggestions"
