"""Index builds run on the training queue; the debounced trigger on the default one."""

from celery import shared_task
from django.conf import settings

from chatbot.celery import Queue


@shared_task(queue=Queue.TRAINING, time_limit=settings.CELERY_TRAINING_TIME_LIMIT)
def build_index_version(version_id: int) -> None:
    from chatbot.knowledge.indexing import knowledge_indexes

    knowledge_indexes.run(version_id)


@shared_task(queue=Queue.DEFAULT)
def rebuild_index_if_changed() -> None:
    from chatbot.knowledge.indexing import rebuild_if_changed

    rebuild_if_changed()
