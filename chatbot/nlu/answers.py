"""The intents as the bot answers with them, kept in each process's memory.

Every answer needs its intent's handoff flag, responses and whether it links a
published article: four queries each time, a fifth of the inference worker's CPU
under load. They change only when staff edit them (chatbot.ops.versioned).
"""

from django.db.models import Exists, OuterRef

from chatbot.nlu.models import Intent, Response
from chatbot.ops.versioned import VersionedCache

_intents = VersionedCache("nlu-intent-answers")


def intent_with_answers(name: str) -> Intent | None:
    """The intent named `name` with its responses prefetched (`intent.responses.all()`)
    and `links_articles` (a published article answers it); None if there is none.
    Read-only: the instance is shared by the threads of this process."""
    return _intents.get(name, lambda: _load(name))


def _load(name: str) -> Intent | None:
    published = Intent.articles.through.objects.filter(intent_id=OuterRef("pk"), article__published=True)
    return (
        Intent.objects.filter(name=name)
        .annotate(links_articles=Exists(published))
        .prefetch_related("responses")
        .first()
    )


def connect_signals() -> None:
    _intents.watch(Intent, Response, "knowledge.Article", m2m=(Intent.articles.through,))
