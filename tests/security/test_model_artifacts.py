"""A model directory is code-adjacent data that every worker loads: nothing in it may
be unlisted, no listed path may lead outside it, and a directory changed on shared
storage after training (file and checksums.json both) is refused at load."""

import json
import shutil
from pathlib import Path

import pytest

from chatbot.modelops.lifecycle import ActivationRefused
from chatbot.replies import services as replies
from chatbot.replies import serving
from chatbot.replies.models import ReplyModelVersion
from inference import artifact
from inference.artifact import ArtifactError
from inference.replies import load_suggester


@pytest.fixture
def model_dir(reply_artifact, tmp_path) -> Path:
    """A copy of a real reply model to tamper with."""
    return Path(shutil.copytree(reply_artifact, tmp_path / "model"))


def list_in_checksums(model_dir: Path, name: str, digest: str) -> None:
    sums = json.loads((model_dir / artifact.CHECKSUMS_FILE).read_text())
    sums["files"][name] = digest
    (model_dir / artifact.CHECKSUMS_FILE).write_text(json.dumps(sums))


def swap_a_file_and_its_checksum(model_dir: Path) -> None:
    """What someone with write access to the shared models volume could do."""
    target = model_dir / artifact.CONFIG_FILE
    config = json.loads(target.read_text())
    config["tampered"] = True
    target.write_text(json.dumps(config))
    artifact.write_checksums(model_dir)


# --- The directory on its own -------------------------------------------------------------


def test_a_file_not_listed_in_the_checksums_is_refused(model_dir):
    (model_dir / "extra.pkl").write_bytes(b"anything at all")
    with pytest.raises(ArtifactError, match="does not list.*extra.pkl"):
        artifact.verify(model_dir)
    with pytest.raises(Exception, match="extra.pkl"):
        load_suggester(model_dir)


def test_an_unlisted_file_in_a_subfolder_is_refused(model_dir):
    (model_dir / "sub").mkdir()
    (model_dir / "sub" / "hook.py").write_text("print('hi')")
    with pytest.raises(ArtifactError, match="sub/hook.py"):
        artifact.verify(model_dir)


@pytest.mark.parametrize("name", ["../outside.json", "/etc/hostname", "sub/../../outside.json"])
def test_a_listed_path_outside_the_directory_is_refused(model_dir, name, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    list_in_checksums(model_dir, name, artifact.sha256_file(outside))
    with pytest.raises(ArtifactError, match="outside the model"):
        artifact.verify(model_dir)


def test_a_listed_symbolic_link_that_leads_out_is_refused(model_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not the model's")
    (model_dir / "notes.txt").symlink_to(secret)
    list_in_checksums(model_dir, "notes.txt", artifact.sha256_file(secret))
    with pytest.raises(ArtifactError, match="leads outside"):
        artifact.verify(model_dir)


def test_an_intact_directory_still_verifies_and_its_digest_names_its_content(model_dir, reply_artifact):
    artifact.verify(model_dir)
    assert artifact.digest(model_dir) == artifact.digest(reply_artifact)
    swap_a_file_and_its_checksum(model_dir)
    artifact.verify(model_dir)  # consistent with its own checksums.json...
    assert artifact.digest(model_dir) != artifact.digest(reply_artifact)  # ...but not the same artifact
    with pytest.raises(ArtifactError, match="not the artifact that was activated"):
        artifact.check_digest(model_dir, artifact.digest(reply_artifact))


# --- Through the product: recorded at activation, checked at load ------------------------------


@pytest.mark.django_db
def test_activation_records_the_artifact_digest(model_dir, admin):
    version = ReplyModelVersion.objects.create(kind="retrieval", status="ready", artifact_dir=str(model_dir))
    activated = replies.activate_version(version.pk, admin)
    assert activated.artifact_sha256 == artifact.digest(model_dir)


@pytest.mark.django_db
def test_a_swapped_artifact_is_refused_at_load_and_at_activation(model_dir, admin):
    serving.forget()
    version = replies.activate_version(
        ReplyModelVersion.objects.create(kind="retrieval", status="ready", artifact_dir=str(model_dir)).pk, admin
    )
    swap_a_file_and_its_checksum(model_dir)
    with pytest.raises(ArtifactError, match="not the artifact that was activated"):
        serving.suggester_for(version)
    version.is_active = False
    version.save(update_fields=["is_active"])
    with pytest.raises(ActivationRefused, match="changed since it was trained"):
        replies.activate_version(version.pk, admin)
    serving.forget()


@pytest.mark.django_db
def test_training_records_the_digest_of_what_it_wrote(visitor, agent, say, settings, tmp_path):
    from chatbot.agents import services as agents

    say(visitor, "where is my order?")
    agents.take_over(visitor.conversation.pk, agent)
    agents.reply(visitor.conversation.pk, agent, "It ships tomorrow.")
    settings.MODEL_DIR = tmp_path
    version = replies.train_version(replies.request_training("retrieval").pk)
    assert version.status == "ready", version.error
    assert version.artifact_sha256 == artifact.digest(Path(version.artifact_dir))


@pytest.mark.django_db
def test_the_intent_model_and_the_knowledge_index_are_checked_against_their_digest_too(reply_artifact):
    """Every kind's serving checks the recorded digest before it loads (a directory
    that is not the recorded one is refused before any of its files is read)."""
    from chatbot.knowledge import serving as knowledge_serving
    from chatbot.knowledge.models import KnowledgeIndexVersion
    from chatbot.nlu import serving as intent_serving
    from chatbot.nlu.models import ModelVersion

    recorded_elsewhere = "0" * 64
    ModelVersion.objects.create(
        status="ready", is_active=True, artifact_dir=str(reply_artifact), artifact_sha256=recorded_elsewhere
    )
    with pytest.raises(ArtifactError, match="not the artifact that was activated"):
        intent_serving.current_model()
    KnowledgeIndexVersion.objects.create(
        status="ready", is_active=True, artifact_dir=str(reply_artifact), artifact_sha256=recorded_elsewhere
    )
    with pytest.raises(ArtifactError, match="not the artifact that was activated"):
        knowledge_serving.current_index()


# --- The quality gate of automatic retraining ----------------------------------------------------


def agents_replied(visitor_factory, agent, say, how_many: int) -> None:
    from chatbot.agents import services as agents

    for i in range(how_many):
        visitor = visitor_factory()
        say(visitor, f"question number {i} about my order")
        agents.take_over(visitor.conversation.pk, agent)
        agents.reply(visitor.conversation.pk, agent, f"Answer number {i}: it ships on day {i}.")


@pytest.mark.django_db
def test_a_retrained_reply_model_without_a_held_out_score_is_not_activated(new_visitor, agent, say, settings, tmp_path):
    """Ten agent replies (the retraining trigger) are too few to hold any out: before the
    gate, such a model started suggesting with no check at all."""
    settings.MODEL_DIR = tmp_path
    agents_replied(new_visitor, agent, say, 10)
    version = replies.train_version(replies.request_training("retrieval", activate_when_ready=True).pk)
    assert version.status == "ready" and not version.report
    assert not version.is_active
    (held,) = replies.reply_models.transitions(version.pk).filter(action="not activated")
    assert "held-out" in held.note
    assert replies.activate_version(version.pk).is_active  # a person still may


@pytest.mark.django_db
def test_a_retrained_reply_model_below_the_minimum_bleu_is_not_activated_even_with_nothing_active(
    new_visitor, agent, say, settings, tmp_path
):
    settings.MODEL_DIR = tmp_path
    settings.REPLY_AUTO_ACTIVATION_MIN_BLEU = 101.0  # no model reaches it
    agents_replied(new_visitor, agent, say, 40)
    version = replies.train_version(replies.request_training("retrieval", activate_when_ready=True).pk)
    assert version.status == "ready" and version.report["bleu"] < 101.0
    assert not version.is_active and not ReplyModelVersion.objects.filter(is_active=True).exists()
    settings.REPLY_AUTO_ACTIVATION_MIN_BLEU = 0.0
    again = replies.train_version(replies.request_training("retrieval", activate_when_ready=True).pk)
    assert again.is_active  # scored on held-out replies and past the minimum
