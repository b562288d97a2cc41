from django.apps import AppConfig


class KnowledgeAppConfig(AppConfig):
    name = "chatbot.knowledge"
    verbose_name = "Help center"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from chatbot.knowledge.models import Article

        def articles_changed(sender, **kwargs) -> None:
            from chatbot.knowledge.indexing import schedule_rebuild

            schedule_rebuild()

        post_save.connect(articles_changed, sender=Article, dispatch_uid="knowledge-rebuild-on-save")
        post_delete.connect(articles_changed, sender=Article, dispatch_uid="knowledge-rebuild-on-delete")
