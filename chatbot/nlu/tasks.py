"""Training runs on its own queue, so a GPU or a big box can take only that."""

from celery import shared_task
from django.conf import settings

from chatbot.celery import Queue
from chatbot.nlu import explanations, services


@shared_task(queue=Queue.TRAINING, time_limit=settings.CELERY_TRAINING_TIME_LIMIT)
def train_model_version(version_id: int) -> None:
    services.train_version(version_id)


@shared_task(queue=Queue.DEFAULT)
def retrain_if_feedback() -> None:
    """Nightly (celery beat): retrain when reviewers accepted feedback since the last version."""
    services.retrain_if_feedback()


@shared_task(queue=Queue.INFERENCE)
def explain_message(message_id: int, version_id: int | None, index_version_id: int | None = None) -> None:
    """Why a visitor message got its intent, by the version that answered it, and its
    knowledge answer (or abstention), by the index version asked; cached, pushed to the agents."""
    explanations.compute_explanation(message_id, version_id, index_version_id)
