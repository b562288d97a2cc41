"""manage.py export_articles OUT_DIR: every article as Markdown with front matter."""

from pathlib import Path

from django.core.management.base import BaseCommand

from chatbot.audit.services import record
from chatbot.knowledge import services


class Command(BaseCommand):
    help = "Export help-center articles as Markdown files (importable again with import_articles)."

    def add_arguments(self, parser):
        parser.add_argument("out_dir", type=Path)

    def handle(self, *args, **options):
        written = services.export_articles(options["out_dir"])
        record(None, "knowledge.export", str(options["out_dir"]), via="manage.py", articles=len(written))
        self.stdout.write(self.style.SUCCESS(f"{len(written)} articles written to {options['out_dir']}"))
