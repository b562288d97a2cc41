"""Recompute the reports' hourly rollup from the final outcomes (after a restore,
or to check it: the figures must not change)."""

from django.core.management.base import BaseCommand

from chatbot.analytics import rollup


class Command(BaseCommand):
    help = "Recompute the hourly rollup the Reports page reads (PostgreSQL) from the final outcomes."

    def handle(self, **options):
        if not rollup.enabled():
            self.stdout.write("This database is not PostgreSQL: the reports read the outcomes directly, no rollup.")
            return
        rows = rollup.rebuild()
        self.stdout.write(f"Rollup rebuilt: {rows} rows.")
