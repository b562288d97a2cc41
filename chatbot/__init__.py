"""The chat server: Django project, apps and the Celery app that runs its tasks."""

from chatbot.celery import app as celery_app

__all__ = ["celery_app"]
