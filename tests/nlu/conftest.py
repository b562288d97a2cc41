"""Fixtures of the improvement loop: a model in service trained the way the
product trains (on the train part of the hash split), and small training runs."""

import shutil
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from tests.conftest import DEMO_INTENTS, REPO, TEST_CACHE, _fingerprint

# Tests train tiny: no ONNX export (the Predictor serves the torch weights).
SMALL_TRAINING = {"export_onnx": False}


@pytest.fixture(scope="session")
def split_model_dir() -> Path:
    """A fast-mode model trained on the train part of the demo data only, so its
    held-out scores are honest and comparable with a retrained version's."""
    import yaml

    from chatbot.nlu.evaluation import split_examples
    from inference import Example, TrainConfig, train_intent_model

    target = (
        TEST_CACHE
        / f"demo-split-model-{_fingerprint(DEMO_INTENTS, REPO / 'inference', REPO / 'chatbot/nlu/evaluation.py')}"
    )
    if not target.exists():
        data = yaml.safe_load(DEMO_INTENTS.read_text())
        pairs = [(text, intent["name"]) for intent in data["intents"] for text in intent["examples"]]
        train, _ = split_examples(pairs)
        TEST_CACHE.mkdir(parents=True, exist_ok=True)
        for stale in TEST_CACHE.glob("demo-split-model-*"):
            shutil.rmtree(stale, ignore_errors=True)
        examples = [Example(text=t, intent=i) for t, i in train]
        train_intent_model(examples, target, config=TrainConfig(mode="fast", seed=13, **SMALL_TRAINING))
    return target


@pytest.fixture
def serving_version(db, demo_intents, split_model_dir):
    """The version in service: ready, active, trained on the train split."""
    from chatbot.nlu.models import ModelVersion

    return ModelVersion.objects.create(
        status=ModelVersion.Status.READY,
        artifact_dir=str(split_model_dir),
        is_active=True,
        activated_at=timezone.now(),
        model_id="serving",
        busy=False,
    )


@pytest.fixture
def small_training(tmp_path):
    with override_settings(NLU_TRAIN_OPTIONS=SMALL_TRAINING, MODEL_DIR=tmp_path / "models"):
        yield


@pytest.fixture
def staff_without_perms(db):
    """Staff who may look at model versions and feedback but not train, activate or accept."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("dora", password="pw-dora", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_modelversion", "view_feedback", "view_intent"])
    )
    return user


def login(client, user):
    client.force_login(user)
    return client
