from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "chatbot.conversations"
    verbose_name = "Conversations"
