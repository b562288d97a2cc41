"""Import training data: the demo YAML schema or CSV `text,intent`."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from chatbot.nlu import services


class Command(BaseCommand):
    help = "Import intents, examples and responses from a YAML file, or examples from a CSV text,intent file."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)

    def handle(self, path: Path, **options):
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        try:
            if path.suffix.lower() == ".csv":
                report = services.import_examples_csv(path.read_bytes())
            else:
                report = services.import_intents_yaml(path)
        except services.ImportError_ as exc:
            raise CommandError(f"{exc} Nothing was imported.") from exc
        for reason in report.rejected:
            self.stderr.write(f"rejected {reason}")
        self.stdout.write(str(report))
