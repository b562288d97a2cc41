from django.apps import AppConfig


class ModelopsConfig(AppConfig):
    name = "chatbot.modelops"
    label = "modelops"
    verbose_name = "Model versions"
