"""Import training data: CSV text,intent, JSONL, Rasa nlu.yml or the store YAML."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from chatbot.audit.services import record
from chatbot.nlu import training_data


class Command(BaseCommand):
    help = (
        "Import training examples from CSV (text,intent), JSONL, Rasa nlu.yml (3.1), or intents with "
        "responses from the store YAML. The format follows the file name unless --format is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", choices=list(training_data.FORMATS), dest="fmt")

    def handle(self, path: Path, fmt: str | None, **options):
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        content = path.read_bytes()
        try:
            fmt = fmt or training_data.detect_format(path.name, content)
            report = training_data.import_training_data(content, fmt)
        except training_data.ImportFailed as exc:
            raise CommandError(f"{path}: {exc} Nothing was imported.") from exc
        record(None, "training_data.import", str(path), via="manage.py", format=fmt)
        for reason in report.rejected:
            self.stderr.write(f"rejected {reason}")
        self.stdout.write(str(report))
