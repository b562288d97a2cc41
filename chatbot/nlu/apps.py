from django.apps import AppConfig


class NluConfig(AppConfig):
    name = "chatbot.nlu"
    verbose_name = "Intent model"
