"""First run: import the demo store's intents and train and activate a model when none is active."""

from django.core.management.base import BaseCommand, CommandError

from chatbot.nlu import services
from chatbot.nlu.management.commands.train_model import train_with_progress_bar
from chatbot.nlu.models import Intent, ModelVersion


class Command(BaseCommand):
    help = "Import the demo intents (if there are none) and train and activate a model (if none is active)."

    def handle(self, **options):
        if not Intent.objects.exists():
            report = services.import_intents_yaml(services.DEMO_INTENTS, source="demo")
            self.stdout.write(f"Imported the demo store's intents: {report}")
        if services.active_version() is not None:
            self.stdout.write(f"Using the active intent model {services.active_version()}.")
            return
        stale = ModelVersion.objects.filter(status__in=ModelVersion.OPEN_STATUSES)
        stale.update(status=ModelVersion.Status.FAILED, busy=False, error="Interrupted before it finished.")
        version = services.request_training(mode="fast")
        version = train_with_progress_bar(version.pk)
        if version.status != ModelVersion.Status.READY:
            raise CommandError(f"Training the demo model failed: {version.error}")
        services.activate_model_version(version.pk)
        self.stdout.write(f"Trained and activated {version}.")
