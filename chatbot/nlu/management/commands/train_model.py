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
        parser.add_argument("--force", action="store_true", help="activate even if it is worse than the active one")

    def handle(self, mode: str, queue: bool, activate: bool, force: bool, **options):
        try:
            # Queued, the worker activates it (past the guard with --force); here, the
            # activation below does, so that a refusal is this command's error.
            version = services.request_training(
                mode=mode, activate_when_ready=queue and activate, force_activation=queue and activate and force
            )
        except services.TrainingRefused as exc:
            raise CommandError(str(exc)) from exc
        if queue:
            train_model_version.delay(version.pk)
            then = (" and activated when ready" + (" (forced)" if force else "")) if activate else ""
            self.stdout.write(f"Queued {version} on the training queue{then}.")
            return
        version = train_with_progress_bar(version.pk)
        if version.status != version.Status.READY:
            raise CommandError(f"Training failed: {version.error}")
        self.stdout.write(f"Trained {version} in {version.metrics.get('train_seconds', '?')} s.")
        self.stdout.write(describe_evaluation(version))
        if activate:
            try:
                services.activate_model_version(version.pk, force=force)
            except services.ActivationRefused as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"Activated {version}.")


def describe_evaluation(version) -> str:
    """Held-out figures of the new version and of the version that was active."""
    if not version.report:
        return "Not evaluated: too few examples to hold any out."
    lines = [
        f"Held-out split: {version.metrics.get('holdout_examples')} examples "
        f"(trained on {version.metrics.get('train_examples')}).",
        f"  new v{version.pk}: accuracy {version.report['accuracy']:.4f}, macro-F1 {version.report['macro_f1']:.4f}",
    ]
    if version.baseline_report:
        base = version.baseline_report
        lines.append(
            f"  active v{version.baseline_version_id}: accuracy {base['accuracy']:.4f}, macro-F1 {base['macro_f1']:.4f}"
        )
    return "\n".join(lines)


def train_with_progress_bar(version_id: int):
    with tqdm(total=100, desc="Training intent model", unit="%") as bar:

        def progress(fraction: float, stage: str) -> None:
            bar.set_postfix_str(stage[:40])
            bar.update(round(fraction * 100) - bar.n)

        return services.train_version(version_id, progress=progress)
