"""Erase a visitor and everything made from their words (a data subject's erasure request)."""

from django.core.management.base import BaseCommand, CommandError

from chatbot.privacy import services


class Command(BaseCommand):
    help = (
        "Erase the visitor(s) with this email address or id: conversations, messages, review items and "
        "training examples made from their text; lists the model versions to retrain."
    )

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--email")
        who.add_argument("--visitor-id", type=int)
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, email, visitor_id, yes, **options):
        try:
            visitors = services.find_visitors(email=email, visitor_id=visitor_id)
        except services.VisitorNotFound as exc:
            raise CommandError(str(exc)) from exc
        if not yes:
            answer = input(f"Erase {visitors.count()} visitor(s) and everything made from their words? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("Nothing was erased.")
        report = services.erase_visitors(visitors, found_by="email" if email else "visitor_id")
        self.stdout.write(f"Done: {report}.")
