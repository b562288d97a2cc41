"""The shared model-version lifecycle on a toy kind that declares only its trainer and
evaluator: what every kind (intents, replies, the knowledge index to come) gets for free."""

from pathlib import Path

import pytest

from chatbot.modelops.lifecycle import ActivationRefused, ModelKind, Trained, TrainingRefused
from chatbot.replies.models import ReplyModelVersion

pytestmark = pytest.mark.django_db


class Scores(ModelKind):
    """A "model" that is one number; better when larger. It borrows the reply versions' table."""

    model = ReplyModelVersion
    label = "Score model"
    scope_fields = ("kind",)

    def __init__(self, root: Path):
        self.root = root
        self.next_score = 1.0

    def train(self, version, progress, **options) -> Trained:
        if self.next_score is None:
            raise RuntimeError("no data")
        out = self.root / f"v{version.pk}"
        out.mkdir(parents=True)
        (out / "score").write_text(str(self.next_score))
        progress(1.0, "trained")
        return Trained(artifact_dir=out, holdout=["a", "b"], fields={"metrics": {"examples": 2}})

    def load(self, artifact_dir):
        return float((Path(artifact_dir) / "score").read_text())  # OSError when missing

    def evaluate(self, loaded, holdout) -> dict:
        return {"score": loaded, "holdout": holdout}

    def regression_problems(self, report, baseline) -> list[str]:
        return ["lower score"] if report["score"] < baseline["score"] else []

    def enqueue(self, version_id: int) -> None:
        pass


def test_a_kind_that_declares_trainer_and_evaluator_gets_the_whole_lifecycle(tmp_path, admin):
    kind = Scores(tmp_path)
    first = kind.run(kind.request(kind="retrieval", activate_when_ready=True).pk)
    assert first.is_active and first.report == {"score": 1.0, "holdout": ["a", "b"]}
    assert first.metrics["examples"] == 2 and first.progress == 1.0 and not first.busy

    kind.next_score = 0.5
    worse = kind.run(kind.request(kind="retrieval", activate_when_ready=True).pk)
    assert worse.status == "ready" and not worse.is_active  # the guard held it back
    assert worse.baseline_version == first and worse.baseline_report["score"] == 1.0
    with pytest.raises(ActivationRefused, match="lower score"):
        kind.activate(worse.pk)
    assert kind.activate(worse.pk, admin, force=True).activation_note == "Forced past: lower score"
    back = kind.roll_back(first.pk, admin)
    assert back.is_active and back.activation_note == f"Rolled back from {worse}."

    kind.next_score = None
    failed = kind.run(kind.request(kind="retrieval").pk)
    assert failed.status == "failed" and "no data" in failed.error and not failed.busy
    assert kind.run(failed.pk) == failed  # a redelivered task does nothing

    other_scope = kind.request(kind="seq2seq")  # scopes train side by side
    with pytest.raises(TrainingRefused):
        kind.request(kind="seq2seq")
    assert other_scope.busy

    assert list(kind.transitions(worse.pk).values_list("action", flat=True)) == [
        "requested",
        "claimed",
        "evaluating",
        "ready",
        "activated",
    ]
    assert list(kind.transitions(failed.pk).values_list("action", "from_status", "to_status")) == [
        ("requested", "", "queued"),
        ("claimed", "queued", "training"),
        ("failed", "training", "failed"),
    ]
