"""Train a new intent model version from the current training data."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from chatbot.nlu import services
from chatbot.nlu.tasks import train_model_version


class Command(BaseCommand):
    help = "Train a new intent model version (here, or on the training queue with --queue) and optionally activate it."

    def add_arguments(self, parser):
        parser.add_argument("--mode", choices=["fast", "full"], default="fast")
        parser.add_argument("--queue", action="store_true", help="hand the run to a training worker instead")
        parser.add_argument("--activate", action="store_true", help="activate the new version when it is ready")

    def handle(self, mode: str, queue: bool, activate: bool, **options):
        try:
            version = services.request_training(mode=mode)
        except services.TrainingRefused as exc:
            raise CommandError(str(exc)) from exc
        if queue:
            train_model_version.delay(version.pk)
            self.stdout.write(f"Queued {version} on the training queue.")
            return
        version = train_with_progress_bar(version.pk)
        if version.status != version.Status.READY:
            raise CommandError(f"Training failed: {version.error}")
        self.stdout.write(f"Trained {version}: {version.metrics}")
        if activate:
            services.activate_model_version(version.pk)
            self.stdout.write(f"Activated {version}.")


def train_with_progress_bar(version_id: int):
    with tqdm(total=100, desc="Training intent model", unit="%") as bar:

        def progress(fraction: float, stage: str) -> None:
            bar.set_postfix_str(stage[:40])
            bar.update(round(fraction * 100) - bar.n)

        return services.train_version(version_id, progress=progress)
