"""First run: import the demo store's intents, help center and canned responses, and train and activate an intent
model, a reply model and a knowledge index when none is active."""

from django.core.management.base import BaseCommand, CommandError

from chatbot.agents.demo import add_starter_canned_responses
from chatbot.knowledge import services as knowledge
from chatbot.nlu import services
from chatbot.nlu.management.commands.train_model import train_with_progress_bar
from chatbot.nlu.models import Intent, ModelVersion
from chatbot.replies import services as replies
from chatbot.replies.models import ReplyModelVersion


class Command(BaseCommand):
    help = "Import the demo intents (if there are none) and train and activate a model (if none is active)."

    def handle(self, **options):
        if not Intent.objects.exists():
            report = services.import_intents_yaml(services.DEMO_INTENTS, source="demo")
            self.stdout.write(f"Imported the demo store's intents: {report}")
        if report := knowledge.import_demo_help_center():
            self.stdout.write(f"Imported the demo help center: {report}")
        if added := add_starter_canned_responses():
            self.stdout.write(f"Added {added} starter canned responses for the demo.")
        self.intent_model()
        self.reply_model()
        self.knowledge_index()

    def intent_model(self) -> None:
        if services.active_version() is not None:
            self.stdout.write(f"Using the active intent model {services.active_version()}.")
            return
        services.intent_models.recover_stale_runs(abandoned=True)  # no worker runs before `serve`
        version = services.request_training(mode="fast")
        version = train_with_progress_bar(version.pk)
        if version.status != ModelVersion.Status.READY:
            raise CommandError(f"Training the demo model failed: {version.error}")
        services.activate_model_version(version.pk)
        self.stdout.write(f"Trained and activated {version}.")

    def reply_model(self) -> None:
        """Suggestions for agents from the first conversation: a retrieval model of the
        intents' responses. Agents' own replies retrain it (REPLY_RETRAIN_AFTER_REPLIES)."""
        active = ReplyModelVersion.objects.filter(is_active=True).first()
        if active is not None:
            self.stdout.write(f"Using the active reply model {active}.")
            return
        replies.reply_models.recover_stale_runs(abandoned=True)
        # An operator's explicit "train and activate": past the automatic-retraining gate.
        version = replies.request_training(
            ReplyModelVersion.Kind.RETRIEVAL, activate_when_ready=True, force_activation=True
        )
        version = replies.train_version(version.pk)
        if not version.is_active:
            raise CommandError(f"Training the demo reply model failed: {version.error or 'not activated'}")
        self.stdout.write(f"Trained and activated reply model {version}.")

    def knowledge_index(self) -> None:
        """The demo help center's index, so the bot answers from its articles from the
        first question: the rebuild that importing them schedules goes to this command's
        own in-process broker, which is gone when it exits."""
        from chatbot.knowledge import indexing
        from chatbot.knowledge.models import Article, KnowledgeIndexVersion

        active = KnowledgeIndexVersion.objects.filter(is_active=True).first()
        if active is not None:
            self.stdout.write(f"Using the active {active}.")
            return
        if not Article.objects.filter(published=True).exists():
            return
        indexing.knowledge_indexes.recover_stale_runs(abandoned=True)
        version = indexing.knowledge_indexes.request(activate_when_ready=True)
        version = indexing.knowledge_indexes.run(version.pk)
        if not version.is_active:
            raise CommandError(f"Building the demo knowledge index failed: {version.error or 'not activated'}")
        self.stdout.write(f"Built and activated {version}.")
