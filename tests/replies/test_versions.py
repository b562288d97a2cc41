"""Reply model versions through the shared lifecycle: stale runs recovered, one run per
kind however many requests race in, the one BLEU (sacrebleu's), and the BLEU guard."""

import threading

import pytest
import sacrebleu
from django.db import connection

from chatbot.agents import services as agents
from chatbot.replies import evaluation, pairs, services
from chatbot.replies.models import ReplyModelVersion
from chatbot.replies.tasks import train_reply_model_version

pytestmark = pytest.mark.django_db


# --- A worker that died mid-run ------------------------------------------------------------


def test_a_reply_run_whose_worker_died_is_recovered_and_the_kind_trains_again(
    handled, agent, demo_intents, settings, tmp_path, monkeypatch
):
    import inference.replies

    settings.MODEL_DIR = tmp_path

    def killed(*args, **kwargs):
        raise SystemExit("worker killed at the training time limit")  # no except clause sees it

    monkeypatch.setattr(inference.replies, "train_reply_model", killed)
    stuck = services.request_training("retrieval", activate_when_ready=True)
    with pytest.raises(SystemExit):
        services.train_version(stuck.pk)
    assert ReplyModelVersion.objects.get(pk=stuck.pk).status == "training"
    monkeypatch.undo()
    settings.MODEL_DIR = tmp_path
    settings.CELERY_TRAINING_TIME_LIMIT = -120  # every run so far is past the limit

    train_reply_model_version(stuck.pk)  # the redelivered task
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "time limit" in stuck.error
    settings.CELERY_TRAINING_TIME_LIMIT = 3600
    settings.REPLY_RETRAIN_AFTER_REPLIES = 1
    agents.reply(handled.pk, agent, "One more answer to learn from.")
    (again,) = [v for v in services.retrain_if_due() if v.kind == "retrieval"]  # automatic retraining too
    assert services.train_version(again.pk).status == "ready"


# --- One run per kind ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_reply_training_requests_make_one_version(monkeypatch):
    """Both requests pass the check before either creates its row: the constraint decides."""
    barrier = threading.Barrier(2, timeout=10)
    create = ReplyModelVersion.objects.create

    def create_after_both_checked(**fields):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return create(**fields)

    monkeypatch.setattr(ReplyModelVersion.objects, "create", create_after_both_checked)
    outcomes = []

    def request():
        try:
            outcomes.append(services.request_training("retrieval"))
        except services.TrainingRefused as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["ReplyModelVersion", "TrainingRefused"]
    assert ReplyModelVersion.objects.count() == 1


# --- One BLEU -----------------------------------------------------------------------------------


class Scripted:
    """A suggester that answers each context with a fixed text."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers

    def suggest(self, context, n=1):
        from inference.replies import Suggestion

        return [Suggestion(text=self.answers[context[-1]["text"]], score=1.0)]


def test_the_product_scores_reply_models_with_sacrebleu_as_the_benchmarks_do():
    from inference.replies import ReplyPair, Turn

    held_out = {
        "where is my order": ("Your order ships tomorrow morning.", "The order ships tomorrow."),
        "can i get a refund": ("I can start a refund for you now.", "I will start a refund now."),
        "do you ship abroad": ("Yes, we ship to most countries.", "We do not ship there, sorry."),
    }
    holdout = [ReplyPair(context=(Turn("customer", c),), reply=ref) for c, (ref, _) in held_out.items()]
    suggester = Scripted({c: hyp for c, (_, hyp) in held_out.items()})
    hypotheses = [hyp for _, hyp in held_out.values()]
    references = [ref for ref, _ in held_out.values()]
    # As bench/replies_sgd.py computes the figures of docs/benchmarks.md.
    expected = sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score
    assert evaluation.bleu_on(suggester, holdout) == pytest.approx(expected, abs=0.01)


# --- The BLEU guard -------------------------------------------------------------------------------


def test_automatic_retraining_does_not_activate_a_reply_model_with_a_much_lower_bleu(
    handled, demo_intents, settings, tmp_path
):
    """The active model saw the held-out pairs (it learnt every pair), so it scores far
    higher on them than a retrained one can: the new one stays ready, not active."""
    from inference.replies import ReplyTrainConfig, train_reply_model

    settings.MODEL_DIR = tmp_path
    every_pair = train_reply_model(pairs.build_reply_pairs(), tmp_path / "all", ReplyTrainConfig(kind="retrieval"))
    active = ReplyModelVersion.objects.create(
        kind="retrieval", status="ready", artifact_dir=str(every_pair), is_active=True
    )
    version = services.train_version(services.request_training("retrieval", activate_when_ready=True).pk)
    assert version.status == "ready" and not version.busy, version.error
    assert version.baseline_version == active
    assert version.baseline_report["bleu"] - version.report["bleu"] > settings.REPLY_ACTIVATION_MAX_BLEU_DROP
    assert not version.is_active and ReplyModelVersion.objects.get(is_active=True) == active
    with pytest.raises(services.ActivationRefused, match="held-out BLEU"):
        services.activate_version(version.pk)
    forced = services.activate_version(version.pk, force=True)
    assert forced.is_active and "Forced past" in forced.activation_note
    settings.REPLY_ACTIVATION_MAX_BLEU_DROP = 100.0
    assert services.activate_version(active.pk).is_active  # within the margin: no force needed


def test_admin_force_action_activates_past_the_guard(client, admin, retrieval_dir):
    active = ReplyModelVersion.objects.create(
        kind="retrieval", status="ready", artifact_dir=str(retrieval_dir), is_active=True
    )
    worse = ReplyModelVersion.objects.create(
        kind="retrieval",
        status="ready",
        artifact_dir=str(retrieval_dir),
        report={"bleu": 10.0, "holdout": []},
        baseline_version=active,
        baseline_report={"bleu": 30.0, "holdout": []},
    )
    client.force_login(admin)
    url = "/admin/replies/replymodelversion/"
    page = client.post(url, {"action": "activate_selected", "_selected_action": [worse.pk]}, follow=True)
    assert "20.00 below the active version" in page.content.decode()
    assert ReplyModelVersion.objects.get(is_active=True) == active
    client.post(url, {"action": "force_activate_selected", "_selected_action": [worse.pk]})
    assert ReplyModelVersion.objects.get(is_active=True) == worse
