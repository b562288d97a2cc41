"""Model versions: one training at a time, evaluation on the held-out split,
activation rules, rollback, and who may do what."""

import re
import shutil
import threading

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from chatbot.nlu import services
from chatbot.nlu.evaluation import activation_problems, in_holdout, split_examples
from chatbot.nlu.models import ModelVersion

pytestmark = pytest.mark.django_db


def report(macro_f1: float, **f1s: float) -> dict:
    return {
        "accuracy": macro_f1,
        "macro_f1": macro_f1,
        "per_intent": {k: {"precision": v, "recall": v, "f1": v, "support": 20} for k, v in f1s.items()},
        "confusion": {"labels": list(f1s), "matrix": [[5 if i == j else 0 for j in f1s] for i in f1s]},
        "holdout": [],
    }


def candidate(serving_version, model_dir, new: dict, old: dict) -> ModelVersion:
    return ModelVersion.objects.create(
        status=ModelVersion.Status.READY,
        artifact_dir=str(model_dir),
        report=new,
        baseline_version=serving_version,
        baseline_report=old,
    )


# --- The split -----------------------------------------------------------------------------


def test_holdout_is_fixed_by_the_text_and_keeps_every_intent_trainable():
    assert in_holdout("is my loot on the way") == in_holdout("Is my  loot on the way")
    pairs = [(f"text {n}", "big") for n in range(100)] + [("a", "tiny"), ("b", "tiny")]
    train, holdout = split_examples(pairs)
    assert 10 <= len(holdout) <= 30 and all(intent == "big" for _, intent in holdout)
    assert split_examples(list(reversed(pairs)))[1] == list(reversed(holdout))  # same examples, any order


# --- One training at a time -------------------------------------------------------------------


def test_second_training_request_is_refused_while_one_runs():
    first = services.request_training()
    with pytest.raises(services.TrainingRefused, match=re.escape(str(first))):
        services.request_training()
    ModelVersion.objects.filter(pk=first.pk).update(status="ready", busy=False)
    assert services.request_training().pk != first.pk


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_training_requests_make_one_version():
    barrier = threading.Barrier(2)
    outcomes = []

    def request():
        try:
            barrier.wait()
            outcomes.append(services.request_training())
        except services.TrainingRefused as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["ModelVersion", "TrainingRefused"]
    assert ModelVersion.objects.count() == 1


def test_a_run_stuck_past_the_time_limit_does_not_block_training(settings):
    stuck = services.request_training()
    ModelVersion.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timezone.timedelta(days=1))
    services.request_training()
    assert ModelVersion.objects.get(pk=stuck.pk).status == "failed"
    assert services.intent_models.transitions(stuck.pk).last().action == "recovered"


def test_a_command_that_runs_without_workers_fails_every_open_run_with_its_reason():
    queued = services.request_training()  # its task went to a broker that is gone
    assert services.intent_models.recover_stale_runs() == 0  # within the time limit: left alone
    assert services.intent_models.recover_stale_runs(abandoned=True) == 1
    queued.refresh_from_db()
    assert (queued.status, queued.busy) == ("failed", False)
    assert "no worker was running" in queued.error
    assert services.intent_models.transitions(queued.pk).last().action == "recovered"


def test_training_evaluates_against_the_serving_version_on_the_same_examples(serving_version, small_training):
    version = services.train_version(services.request_training().pk)
    assert version.status == "ready" and not version.busy, version.error
    assert version.baseline_version == serving_version
    assert version.report["holdout"] == version.baseline_report["holdout"]
    assert version.metrics["holdout_examples"] == len(version.report["holdout"]) > 100
    assert version.metrics["train_examples"] + version.metrics["holdout_examples"] == version.example_count
    # Same data, same seed: the retrained version is as good as the serving one.
    assert activation_problems(version.report, version.baseline_report) == []
    assert version.report["macro_f1"] > 0.7


def test_failed_training_records_the_error(db, small_training):
    version = services.train_version(services.request_training().pk)  # no training data at all
    assert version.status == "failed" and version.error and not version.busy


# --- Activation rules ---------------------------------------------------------------------------


def test_worse_version_is_refused_then_forced_with_a_log_entry(serving_version, split_model_dir, admin):
    worse = candidate(serving_version, split_model_dir, report(0.80, a=0.9, b=0.7), report(0.85, a=0.9, b=0.8))
    with pytest.raises(services.ActivationRefused, match="macro-F1 0.800 is below the active version's 0.850"):
        services.activate_model_version(worse.pk, user=admin)
    assert ModelVersion.objects.get(is_active=True) == serving_version
    forced = services.activate_model_version(worse.pk, user=admin, force=True)
    assert forced.is_active and forced.activated_by == admin and "Forced past" in forced.activation_note
    entry = LogEntry.objects.get(object_id=str(worse.pk))
    assert entry.user == admin and "Forced past" in entry.change_message


def test_one_intent_dropping_more_than_the_margin_is_refused(serving_version, split_model_dir, settings):
    settings.ACTIVATION_MAX_F1_DROP = 0.05
    better_overall = candidate(serving_version, split_model_dir, report(0.9, a=1.0, b=0.8), report(0.85, a=0.8, b=0.9))
    with pytest.raises(services.ActivationRefused, match="F1 of b drops 0.100"):
        services.activate_model_version(better_overall.pk)
    settings.ACTIVATION_MIN_SUPPORT = 21  # too few held-out examples of b to judge it alone
    assert services.activate_model_version(better_overall.pk).is_active


def test_better_version_is_activated_and_the_old_one_can_be_rolled_back_to(serving_version, split_model_dir, admin):
    better = candidate(serving_version, split_model_dir, report(0.9, a=0.9), report(0.85, a=0.85))
    services.activate_model_version(better.pk, user=admin)
    assert ModelVersion.objects.get(is_active=True) == better
    back = services.roll_back_to(serving_version.pk, user=admin)
    assert back.is_active and "Rolled back from" in back.activation_note
    assert ModelVersion.objects.filter(is_active=True).count() == 1


def test_the_log_names_who_activated_and_no_one_for_a_command(serving_version, split_model_dir, admin, caplog):
    better = candidate(serving_version, split_model_dir, report(0.9, a=0.9), report(0.85, a=0.85))
    with caplog.at_level("INFO", logger="chatbot.modelops.lifecycle"):
        services.activate_model_version(better.pk)  # a command or a task: nobody to name
        services.roll_back_to(serving_version.pk, user=admin)
    lines = [r.getMessage() for r in caplog.records if r.name == "chatbot.modelops.lifecycle"]
    assert any(f"v{better.pk} activated." in line for line in lines), lines
    assert any(f"by {admin}" in line for line in lines), lines
    assert not any("None" in line for line in lines), lines


def test_a_version_that_never_served_is_no_rollback_target(serving_version, split_model_dir):
    never = candidate(serving_version, split_model_dir, report(0.9, a=0.9), report(0.85, a=0.85))
    with pytest.raises(services.ActivationRefused, match="never served"):
        services.roll_back_to(never.pk)


def test_failed_version_cannot_be_activated(serving_version):
    failed = ModelVersion.objects.create(status="failed", error="boom")
    with pytest.raises(services.ActivationRefused, match="not ready"):
        services.activate_model_version(failed.pk, force=True)
    assert ModelVersion.objects.get(is_active=True) == serving_version


def test_damaged_artifact_cannot_be_activated_even_by_force(serving_version, split_model_dir, tmp_path):
    damaged_dir = tmp_path / "damaged"
    shutil.copytree(split_model_dir, damaged_dir)
    weights = next(p for p in damaged_dir.iterdir() if p.suffix == ".safetensors")
    weights.write_bytes(weights.read_bytes()[:-64] + b"\0" * 64)
    damaged = candidate(serving_version, damaged_dir, report(0.9, a=0.9), report(0.85, a=0.85))
    with pytest.raises(services.ActivationRefused, match="damaged"):
        services.activate_model_version(damaged.pk, force=True)
    missing = candidate(serving_version, tmp_path / "gone", report(0.9, a=0.9), report(0.85, a=0.85))
    with pytest.raises(services.ActivationRefused, match="damaged"):
        services.activate_model_version(missing.pk, force=True)
    assert ModelVersion.objects.get(is_active=True) == serving_version


# --- Doors: who may train and activate ---------------------------------------------------------


@pytest.mark.parametrize("who", ["stranger", "agent"])
def test_non_staff_are_sent_to_the_login(client, request, who):
    client.force_login(request.getfixturevalue(who))
    response = client.post(reverse("admin:nlu_modelversion_train"), {"mode": "fast"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not ModelVersion.objects.exists()


def test_staff_without_permission_may_look_but_not_train_or_activate(
    client, staff_without_perms, serving_version, split_model_dir
):
    better = candidate(serving_version, split_model_dir, report(0.9, a=0.9), report(0.85, a=0.85))
    client.force_login(staff_without_perms)
    assert client.get(reverse("admin:nlu_modelversion_report", args=[better.pk])).status_code == 200
    assert client.post(reverse("admin:nlu_modelversion_train"), {"mode": "fast"}).status_code == 403
    assert client.post(reverse("admin:nlu_modelversion_activate", args=[better.pk])).status_code == 403
    assert client.post(reverse("admin:nlu_modelversion_rollback", args=[serving_version.pk])).status_code == 403
    assert ModelVersion.objects.count() == 2 and ModelVersion.objects.get(is_active=True) == serving_version


def test_admin_trains_from_the_changelist_button(client, admin, monkeypatch, django_capture_on_commit_callbacks):
    from chatbot.nlu import tasks

    queued = []
    monkeypatch.setattr(tasks.train_model_version, "delay", queued.append)
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:nlu_modelversion_train"), {"mode": "fast"})
    version = ModelVersion.objects.get()
    assert response["Location"] == reverse("admin:nlu_modelversion_report", args=[version.pk])
    assert queued == [version.pk] and version.created_by == admin
    refused = client.post(reverse("admin:nlu_modelversion_train"), {"mode": "fast"}, follow=True)
    assert "is still being trained" in refused.content.decode()
    assert ModelVersion.objects.count() == 1
    progress = client.get(reverse("admin:nlu_modelversion_progress", args=[version.pk])).json()
    assert progress == {
        "id": version.pk,
        "status": "queued",
        "progress": 0.0,
        "stage": "",
        "error": "",
        "finished": False,
    }


def test_admin_activates_with_force_from_the_report_page(client, admin, serving_version, split_model_dir):
    worse = candidate(serving_version, split_model_dir, report(0.80, a=0.8), report(0.85, a=0.85))
    client.force_login(admin)
    page = client.get(reverse("admin:nlu_modelversion_report", args=[worse.pk])).content.decode()
    assert "Worse than the active version" in page and 'id="confusion"' in page
    url = reverse("admin:nlu_modelversion_activate", args=[worse.pk])
    refused = client.post(url, follow=True).content.decode()
    assert "Tick &#x27;force&#x27; to activate anyway" in refused
    assert not ModelVersion.objects.get(pk=worse.pk).is_active
    client.post(url, {"force": "on"})
    assert ModelVersion.objects.get(pk=worse.pk).is_active


def test_confusion_matrix_is_a_png(client, admin, serving_version, split_model_dir):
    version = candidate(serving_version, split_model_dir, report(0.9, a=0.9, b=0.9), {})
    client.force_login(admin)
    response = client.get(reverse("admin:nlu_modelversion_confusion", args=[version.pk]))
    assert response["Content-Type"] == "image/png" and response.content.startswith(b"\x89PNG")


# --- The command, queued -----------------------------------------------------------------------


def test_train_model_queue_activate_force_activates_past_the_guard_when_the_worker_is_done(
    serving_version, small_training, settings, monkeypatch
):
    from django.core.management import call_command

    from chatbot.nlu import tasks

    queued = []
    monkeypatch.setattr(tasks.train_model_version, "delay", queued.append)
    settings.ACTIVATION_MAX_F1_DROP = -1.0  # every intent must gain 1.0 F1: the guard refuses any version
    call_command("train_model", "--queue", "--activate", "--force")
    (version_id,) = queued
    tasks.train_model_version(version_id)  # what the training worker runs
    version = ModelVersion.objects.get(pk=version_id)
    assert version.status == "ready", version.error
    assert version.is_active and "Forced past" in version.activation_note
    assert not ModelVersion.objects.get(pk=serving_version.pk).is_active
    actions = list(services.intent_models.transitions(version_id).values_list("action", "to_status"))
    assert actions == [
        ("requested", "queued"),
        ("claimed", "training"),
        ("evaluating", "evaluating"),
        ("ready", "ready"),
        ("activated", "ready"),
    ]


def test_train_model_queue_activate_asks_the_worker_to_activate_within_the_guard(monkeypatch, db):
    from django.core.management import call_command

    from chatbot.nlu import tasks

    monkeypatch.setattr(tasks.train_model_version, "delay", lambda version_id: None)
    call_command("train_model", "--queue", "--activate")
    version = ModelVersion.objects.get()
    assert version.activate_when_ready and not version.force_activation
