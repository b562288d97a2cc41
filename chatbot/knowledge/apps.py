from django.apps import AppConfig


class KnowledgeAppConfig(AppConfig):
    name = "chatbot.knowledge"
    verbose_name = "Help center"
    default_auto_field = "django.db.models.BigAutoField"
