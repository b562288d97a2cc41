"""The Celery app and the one enum naming its queues.

A GPU host runs a worker for the `inference` queue and nothing else, so every
task names its queue through `Queue`.
"""

import os
from enum import StrEnum

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")


class Queue(StrEnum):
    DEFAULT = "default"
    INFERENCE = "inference"
    TRAINING = "training"


app = Celery("chatbot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
