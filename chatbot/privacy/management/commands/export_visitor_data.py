"""Everything stored about a visitor, as JSON (a data subject's access request)."""

import json

from django.core.management.base import BaseCommand, CommandError

from chatbot.audit.services import record
from chatbot.privacy import services


class Command(BaseCommand):
    help = "Print (or write to --output) everything stored about the visitor(s) with this email address or id."

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--email")
        who.add_argument("--visitor-id", type=int)
        parser.add_argument("--output", help="a file to write instead of standard output")

    def handle(self, email, visitor_id, output, **options):
        try:
            visitors = services.find_visitors(email=email, visitor_id=visitor_id)
        except services.VisitorNotFound as exc:
            raise CommandError(str(exc)) from exc
        data = json.dumps(services.export_visitors(visitors), indent=2, ensure_ascii=False)
        record(
            None,
            "privacy.export",
            f"{visitors.count()} visitor(s)",
            found_by="email" if email else "visitor_id",
            via="command",
        )
        if output:
            with open(output, "w", encoding="utf-8") as file:
                file.write(data + "\n")
        else:
            self.stdout.write(data)
