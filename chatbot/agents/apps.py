from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "chatbot.agents"
    verbose_name = "Agents"
