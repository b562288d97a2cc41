"""Export the training data as CSV, JSONL, Rasa nlu.yml or the store YAML."""

from pathlib import Path

from django.core.management.base import BaseCommand

from chatbot.audit.services import record
from chatbot.nlu import training_data


class Command(BaseCommand):
    help = "Export training examples (csv, jsonl, rasa) or intents with responses (yaml) to a file or stdout."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=list(training_data.FORMATS), default="csv", dest="fmt")
        parser.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")

    def handle(self, fmt: str, output: Path | None, **options):
        content = training_data.export_training_data(fmt)
        record(None, "training_data.export", str(output or "stdout"), via="manage.py", format=fmt)
        if output is None:
            self.stdout.write(content, ending="")
        else:
            output.write_text(content, encoding="utf-8")
            self.stderr.write(f"Wrote {output}.")
