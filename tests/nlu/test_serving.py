"""The worker's hold on the intent model: micro-batching and hot swap."""

import threading

import pytest

from chatbot.nlu import serving
from chatbot.nlu.models import ModelVersion


class CountingPredictor:
    """The real predictor, with a record of the batch sizes it was asked for."""

    def __init__(self, predictor) -> None:
        self.predictor = predictor
        self.batches: list[int] = []
        self.gate = threading.Event()

    def predict(self, texts):
        self.gate.wait(timeout=10)
        self.batches.append(len(texts))
        return self.predictor.predict(texts)


@pytest.fixture(scope="module")
def predictor(demo_model_dir):
    from inference import Predictor

    return Predictor.load(demo_model_dir)


def test_concurrent_predictions_share_a_forward_pass(predictor):
    batcher = serving.MicroBatcher()
    counting = CountingPredictor(predictor)
    texts = ["where is my order", "hello", "how do I return this", "thanks a lot"] * 5
    futures = [batcher.submit(counting, text) for text in texts]
    counting.gate.set()
    results = [f.result(timeout=30) for f in futures]
    assert [r.intent for r in results] == [p.intent for p in predictor.predict(texts)]
    assert sum(counting.batches) == len(texts)
    assert len(counting.batches) < len(texts) and max(counting.batches) > 1


def test_a_lone_prediction_is_not_held_for_a_batch(predictor):
    batcher = serving.MicroBatcher()
    counting = CountingPredictor(predictor)
    counting.gate.set()
    assert batcher.submit(counting, "hello").result(timeout=30).intent == "greeting"
    assert counting.batches == [1]


def test_a_failing_prediction_reaches_every_waiting_task():
    class Broken:
        def predict(self, texts):
            raise RuntimeError("model exploded")

    futures = [serving.MicroBatcher().submit(Broken(), "hi") for _ in range(3)]
    for future in futures:
        with pytest.raises(RuntimeError, match="model exploded"):
            future.result(timeout=10)


@pytest.mark.django_db
def test_activating_another_version_swaps_the_model_without_restart(active_model, demo_model_dir):
    first = serving.current_model()
    assert first.version_id == active_model.pk
    assert serving.current_model() is first  # no reload while the version is unchanged
    ModelVersion.objects.update(is_active=False)
    second_version = ModelVersion.objects.create(
        status=ModelVersion.Status.READY, artifact_dir=str(demo_model_dir), is_active=True
    )
    second = serving.current_model()
    assert second.version_id == second_version.pk and second is not first
    assert serving.predict("where is my order")[1] == second_version.pk


@pytest.mark.django_db
def test_no_active_model_is_reported():
    with pytest.raises(serving.NoActiveModel):
        serving.current_model()
