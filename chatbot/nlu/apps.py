from django.apps import AppConfig


class NluConfig(AppConfig):
    name = "chatbot.nlu"
    verbose_name = "Intent model"

    def ready(self) -> None:
        from chatbot.nlu import answers

        answers.connect_signals()
