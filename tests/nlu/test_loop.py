"""The whole improvement loop, on a running worker: a visitor is misunderstood,
the message is reviewed into training data, a new version is trained on the
training queue, evaluated against the serving one, activated, and the same
message is then answered with the right intent, without a restart."""

import asyncio
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chatbot.asgi import application
from chatbot.nlu import services
from chatbot.nlu.evaluation import in_holdout
from chatbot.nlu.models import Feedback, ModelVersion, TrainingExample
from tests.conftest import ORIGIN

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

MISUNDERSTOOD = "is my loot on the way"
# What a reviewer adds besides the message itself: paraphrases from the inbox.
PARAPHRASES = ["where is my loot", "when will my loot get here", "is my loot coming", "wheres my loot"]


async def ask(visitor, text: str) -> dict:
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", ORIGIN.encode())])
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "auth", "token": visitor.token, "last_seq": 10_000})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "history"
    await communicator.send_json_to({"type": "user_message", "text": text, "client_msg_id": str(uuid.uuid4())})
    while True:
        frame = await communicator.receive_json_from(timeout=30)
        if frame["type"] == "message" and frame["sender"] == "bot":
            await communicator.disconnect()
            return frame


async def wait_for_training(version_id: int) -> ModelVersion:
    seen = set()
    for _ in range(300 * 4):
        version = await ModelVersion.objects.aget(pk=version_id)
        seen.add(version.status)
        if version.status in ("ready", "failed"):
            return version, seen
        await asyncio.sleep(0.25)
    raise TimeoutError(f"training did not finish in 300 s; last {version.status} {version.stage}")


async def test_misunderstood_message_is_fixed_by_review_retrain_and_activation(
    visitor, serving_version, small_training, celery_worker, admin
):
    # The serving model does not know this phrase: the bot falls back.
    before = await ask(visitor, MISUNDERSTOOD)
    assert before["intent"] != "order_status"
    feedback = await Feedback.objects.select_related("message").aget(message__text=MISUNDERSTOOD)

    # A reviewer accepts it as order_status, with paraphrases from other messages.
    await database_sync_to_async(services.accept_feedback)(feedback.pk, "order_status", user=admin)
    order_status = (
        await TrainingExample.objects.select_related("intent").filter(intent__name="order_status").afirst()
    ).intent
    for text in PARAPHRASES:
        await TrainingExample.objects.acreate(intent=order_status, text=text, source="feedback")
    assert not any(in_holdout(text) for text in PARAPHRASES)  # these are trained on

    # Train on the training queue; the worker reports its stages.
    version = await database_sync_to_async(services.start_training)(user=admin)
    version, seen = await wait_for_training(version.pk)
    assert version.status == "ready", version.error
    assert {"training", "ready"} <= seen

    # Evaluated on the same held-out examples as the serving version.
    assert version.baseline_version_id == serving_version.pk
    assert version.report["holdout"] == version.baseline_report["holdout"]
    assert [MISUNDERSTOOD, "order_status"] in version.report["holdout"]  # the message itself measures the fix

    await database_sync_to_async(services.activate_model_version)(version.pk, user=admin)

    # The running worker swaps models on the next message: no restart.
    after = await ask(visitor, MISUNDERSTOOD)
    assert after["intent"] == "order_status"
    assert after["text"] != before["text"]
