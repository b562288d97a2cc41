"""Train a new reply-suggestion model version from the agents' answers (and the intents' responses)."""

from django.core.management.base import BaseCommand, CommandError

from chatbot.replies import services
from chatbot.replies.tasks import train_reply_model_version


class Command(BaseCommand):
    help = "Train a reply model version (here, or on the training queue with --queue) and optionally activate it."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=["seq2seq", "retrieval"], default="seq2seq")
        parser.add_argument("--queue", action="store_true", help="hand the run to a training worker instead")
        parser.add_argument("--activate", action="store_true", help="activate the new version when it is ready")
        parser.add_argument(
            "--force", action="store_true", help="activate even if its held-out BLEU is below the active one's"
        )

    def handle(self, kind: str, queue: bool, activate: bool, force: bool, **options):
        try:
            # Queued, the worker activates it; here, the activation below does, so that
            # a refusal (the BLEU guard) is this command's error.
            version = services.request_training(
                kind, activate_when_ready=queue and activate, force_activation=queue and activate and force
            )
        except services.TrainingRefused as exc:
            raise CommandError(str(exc)) from exc
        if queue:
            train_reply_model_version.delay(version.pk)
            self.stdout.write(f"Queued {version} on the training queue.")
            return
        version = services.train_version(version.pk)
        if version.status != version.Status.READY:
            raise CommandError(f"Training failed: {version.error}")
        bleu = version.metrics.get("bleu")
        self.stdout.write(
            f"Trained {version} on {version.pair_count} pairs in {version.metrics.get('train_seconds', '?')} s"
            + (f", held-out BLEU {bleu}." if bleu is not None else " (too few pairs to hold any out).")
        )
        if activate:
            try:
                version = services.activate_version(version.pk, force=force)
            except services.ActivationRefused as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"Activated {version}.")
