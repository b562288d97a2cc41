"""manage.py import_articles PATH: a folder or zip of Markdown/HTML articles, or a CSV/JSONL FAQ."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from chatbot.audit.services import record
from chatbot.knowledge import services


class Command(BaseCommand):
    help = "Import help-center articles (all or nothing: a bad file is reported and nothing is written)."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path, help="folder, .zip, .md, .html, .csv or .jsonl")
        parser.add_argument("--unpublished", action="store_true", help="import as drafts")

    def handle(self, *args, **options):
        try:
            sources = [s for path in options["paths"] for s in services.read_path(path)]
            report = services.import_articles(sources, publish=not options["unpublished"])
        except services.ImportFailed as exc:
            for name, reason in exc.problems:
                self.stderr.write(f"{name}: {reason}")
            raise CommandError(f"nothing imported: {len(exc.problems)} problem(s)") from None
        record(
            None,
            "knowledge.import",
            ", ".join(str(p) for p in options["paths"]),
            via="manage.py",
            created=len(report.created),
            updated=len(report.updated),
        )
        self.stdout.write(self.style.SUCCESS(str(report)))
