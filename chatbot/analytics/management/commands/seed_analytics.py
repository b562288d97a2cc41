"""Generate conversation history for the Reports page (demos) and bench/analytics.py."""

from django.core.management.base import BaseCommand, CommandError

from chatbot.analytics import seeding
from chatbot.analytics.models import SeedRun
from chatbot.conversations.models import Conversation


class Command(BaseCommand):
    help = "Generate realistic conversation history (outcomes, ratings, agents, two model versions) and finalise it."

    def add_arguments(self, parser):
        parser.add_argument("--conversations", type=int, default=1000, help="how many conversations (default 1000)")
        parser.add_argument("--days", type=int, default=60, help="spread over this many days before now (default 60)")
        parser.add_argument("--seed", type=int, default=15, help="random seed")
        parser.add_argument(
            "--demo",
            action="store_true",
            help="demo bootstrap: marked as demo data, and only into a database without conversations",
        )

    def handle(self, conversations: int, days: int, seed: int, demo: bool, **options):
        if conversations < 1 or days < 1:
            raise CommandError("--conversations and --days must be at least 1.")
        if demo and (SeedRun.objects.filter(demo=True).exists() or Conversation.objects.exists()):
            self.stdout.write("Demo history: the database already has conversations; nothing seeded.")
            return

        def progress(done: int, messages: int) -> None:
            self.stdout.write(f"  {done}/{conversations} conversations, {messages} messages", ending="\r")
            self.stdout.flush()

        result = seeding.seed(conversations, days=days, demo=demo, seed=seed, progress=None if demo else progress)
        label = "demo history (marked as demo data)" if demo else "history"
        self.stdout.write(
            f"\nSeeded {label}: {result['conversations']} conversations, {result['messages']} messages; "
            f"{result['finalised']} outcomes final."
        )
